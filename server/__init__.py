"""convnet-demo server: FastAPI app, training worker, event hub (see server/app.py)."""
