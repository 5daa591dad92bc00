import subprocess
import sys
import textwrap

import pytest
import torch

from benchmark import ImageMethod, Method, registry
from conftest import REPO, TEST_METHODS, run_cli


def test_defining_a_subclass_registers_it():
    class Zeros(ImageMethod):
        name = "test-registry-zeros"

        def setup(self, vocabulary, device):
            pass

        def segment_frame(self, image):
            return torch.zeros(image.shape[1:], dtype=torch.int64)

    assert registry.get("test-registry-zeros") is Zeros
    assert "test-registry-zeros" in registry.available()
    assert isinstance(registry.create("test-registry-zeros"), Zeros)


def test_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="built-in"):
        class Impostor(Method):
            name = "chance"

            def setup(self, vocabulary, device):
                pass

            def segment(self, video):
                yield from ()


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(registry.UnknownMethodError, match="known methods: .*chance"):
        registry.get("no-such-method")


def test_options_are_checked_against_the_method():
    registry.load_plugin(str(TEST_METHODS))
    assert registry.get("test-constant").default_options() == {"label": 0}
    with pytest.raises(TypeError, match="its options: label"):
        registry.create("test-constant", lable=2)
    with pytest.raises(TypeError, match="takes no options"):
        registry.create("test-abstain", x=1)


def test_plugin_by_path_and_by_module(tmp_path, monkeypatch):
    registry.load_plugin(str(TEST_METHODS))
    registry.load_plugin(str(TEST_METHODS))  # a second import of the same file is harmless
    assert registry.get("test-oracle").__name__ == "Oracle"
    (tmp_path / "my_methods_module.py").write_text(textwrap.dedent("""
        from benchmark import ImageMethod
        class Mine(ImageMethod):
            name = "test-module-plugin"
            def setup(self, vocabulary, device): pass
            def segment_frame(self, image): return image[0].long() * 0
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_plugin("my_methods_module")
    assert registry.get("test-module-plugin").__name__ == "Mine"
    with pytest.raises(FileNotFoundError):
        registry.load_plugin(str(tmp_path / "missing.py"))
    with pytest.raises(ModuleNotFoundError, match="neither an existing file"):
        registry.load_plugin("no_such_module_anywhere")


def test_builtins_import_lazily_and_entry_points_are_found(tmp_path):
    # An installed distribution that declares a method in the group benchmark.methods.
    (tmp_path / "ep_methods.py").write_text(textwrap.dedent("""
        import torch
        from benchmark import ImageMethod
        class FromEntryPoint(ImageMethod):
            name = "from-entry-point"
            def setup(self, vocabulary, device): pass
            def segment_frame(self, image): return torch.zeros(image.shape[1:], dtype=torch.int64)
    """))
    dist = tmp_path / "ep_methods-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-methods\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[benchmark.methods]\nfrom-entry-point = ep_methods:FromEntryPoint\n")
    code = textwrap.dedent("""
        import sys
        from benchmark import registry
        names = registry.available()
        assert "methods.chance" not in sys.modules and "ep_methods" not in sys.modules
        assert names["from-entry-point"].startswith("entry point") and names["chance"] == "built-in"
        assert registry.get("from-entry-point").__name__ == "FromEntryPoint"
        assert registry.get("chance").__module__ == "methods.chance"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_list_options_shows_each_option_with_its_type_default_and_help():
    done = run_cli("list", "options", "test-oracle", "--plugin", TEST_METHODS, check=0)
    lines = done.stdout.splitlines()
    assert "--opt test-oracle.dataset=synthetic  (a string)" in lines
    assert lines[lines.index("--opt test-oracle.noise=0.0  (a number)") + 1].strip() == "share of pixels given a random label"
    assert "--opt chance.seed=0  (an integer)" in run_cli("list", "options", "chance", check=0).stdout
    unknown = run_cli("list", "options", "no-such-method")
    assert unknown.returncode == 2 and "unknown method 'no-such-method'" in unknown.stderr
