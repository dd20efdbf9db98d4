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


def test_bench_reports_the_channel_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--seconds", "0.2", "--cases", "worlds64_agents10", "worlds64_agents10_comm8",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    comm, plain = data["worlds64_agents10_comm8"], data["worlds64_agents10"]
    assert comm["comm_dim"] == 8 and comm["agent_steps_per_s"] > 0
    assert comm["ratio_to_worlds64_agents10"] == comm["agent_steps_per_s"] / plain["agent_steps_per_s"]
    assert "x the agent-steps/s of worlds64_agents10" in capsys.readouterr().out
