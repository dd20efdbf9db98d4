"""`entropy bench` writes the documented JSON keys with measured numbers."""
import json

from entropy_engine.cli import main


def test_bench_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--seconds", "0.2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    for key in ("worlds64_agents10", "world1_agents10000"):
        assert data[key]["agent_steps_per_s"] > 0
        assert data[key]["steps"] >= 5
    assert data["machine"]["cores"] >= 1
    assert "worlds64_agents10" in capsys.readouterr().out
