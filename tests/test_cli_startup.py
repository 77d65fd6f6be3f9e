"""The command line starts without the heavy libraries: they are imported by the commands that need them."""
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "xgboost", "pandas", "sklearn", "matplotlib", "pyarrow")


def loaded_after(code: str) -> list[str]:
    """Heavy modules present in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def trained_dir(events, small_config, tmp_path):
    from encoder import SequenceEncoder
    SequenceEncoder("account", "ts", "label", small_config).fit(events).save(tmp_path / "enc")
    return tmp_path / "enc"


def test_importing_the_cli_imports_no_heavy_library():
    assert loaded_after("import pipelines.cli") == []


def test_every_help_runs_without_heavy_libraries():
    code = ("from pipelines.cli import main\n"
            "every = [[], *([g] for g in main.commands), *([g, c] for g, grp in main.commands.items() for c in grp.commands)]\n"
            "assert len(every) > 15 and ['encoder', 'drift'] in every and ['encoder', 'export'] in every\n"
            "for args in every:\n"
            "    try:\n"
            "        main([*args, '--help'], standalone_mode=False)\n"
            "    except SystemExit:\n"
            "        pass")
    assert loaded_after(code) == []


def test_package_names_still_resolve_on_first_use():
    from classifier import LatentClassifier
    from encoder import SequenceEncoder, load
    assert LatentClassifier.__name__ == "LatentClassifier" and SequenceEncoder.load is not None and callable(load)


def test_inspect_reads_the_manifest_without_torch(trained_dir):
    code = (f"from pipelines.cli import main\n"
            f"try:\n    main(['encoder', 'inspect', {str(trained_dir)!r}], standalone_mode=False)\n"
            f"except SystemExit as e:\n    assert not e.code, e.code")
    assert "torch" not in loaded_after(code)


def test_inspect_still_refuses_changed_weights(trained_dir):
    from click.testing import CliRunner

    from pipelines.cli import main
    weights = trained_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    r = CliRunner().invoke(main, ["encoder", "inspect", str(trained_dir)])
    assert r.exit_code == 1 and "does not match its manifest" in r.output
