import argparse
import json

from engine.data.bench import run_data_bench
from tests.engine.data.builders import make_image_folder


def test_data_bench_times_scratch_and_cache_without_touching_the_cache(tmp_path, capsys,
                                                                     cache_dir):
    folder = make_image_folder(tmp_path / "photos")
    args = argparse.Namespace(data=True, source=str(folder), json=True)
    assert run_data_bench(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["source"] == "folder" and result["images"] == 18
    assert result["from_scratch_s"] > 0 and result["from_cache_s"] > 0
    assert result["augmented_batch_of_32_ms"] > 0
    assert not cache_dir.exists()
    assert run_data_bench(argparse.Namespace(data=True, source=str(folder))) == 0
    out = capsys.readouterr().out
    assert "open from scratch" in out and "open from cache" in out
