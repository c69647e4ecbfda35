"""One router per feature; server.app includes them all."""
