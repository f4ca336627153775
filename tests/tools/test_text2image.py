from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from moss_agent.errors import ToolError, UsageError
from moss_agent.tools import text2image as t2i
from moss_agent.tools.text2image import (
    DEFAULT_MODEL_ID,
    MAX_DESCRIPTION_CHARS,
    ImageGenerator,
    Text2ImageInput,
    text2image,
    text2image_tool,
)

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("diffusers")

SAFE_NAME = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{12}\.png$")
FAST = {"num_inference_steps": 2}


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.exists() else []


def tool_call(description: str) -> dict[str, Any]:
    return {"name": "Text2Image", "args": {"description": description}, "id": "call-1", "type": "tool_call"}


# ----------------------------------------------------------------------------- generation


def test_generate_writes_a_png_with_a_safe_unique_name(
    tiny_pipeline: Any, tiny_image_size: int, tmp_path: Path
) -> None:
    generator = ImageGenerator(pipeline=tiny_pipeline, output_dir=tmp_path / "out", **FAST)
    first = generator.generate("a red cat on a mat")
    second = generator.generate("../../etc/passwd")
    assert first != second
    for path in (first, second):
        assert path.parent == tmp_path / "out"
        assert SAFE_NAME.match(path.name)
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (tiny_image_size, tiny_image_size)
    assert pngs(tmp_path / "out") == sorted([first, second])


def test_text2image_answers_the_moss_success_text(tiny_pipeline: Any, tmp_path: Path) -> None:
    generator = ImageGenerator(pipeline=tiny_pipeline, output_dir=tmp_path, **FAST)
    assert text2image("a lighthouse at dawn", generator=generator) == "Image generated successfully."
    assert len(pngs(tmp_path)) == 1


def test_loading_from_a_local_folder_happens_once(tiny_pipeline_dir: Path, tmp_path: Path) -> None:
    generator = ImageGenerator(model_id=str(tiny_pipeline_dir), output_dir=tmp_path, device="auto", **FAST)
    assert not generator.is_loaded
    assert text2image("a blue bird", generator=generator) == "Image generated successfully."
    assert text2image("a green frog", generator=generator) == "Image generated successfully."
    assert generator.load_count == 1 and generator.is_loaded
    assert len(pngs(tmp_path)) == 2


@pytest.mark.parametrize("description", ["", "   \n", "x" * (MAX_DESCRIPTION_CHARS + 1)])
def test_bad_descriptions_give_no_result(tiny_pipeline: Any, tmp_path: Path, description: str) -> None:
    generator = ImageGenerator(pipeline=tiny_pipeline, output_dir=tmp_path, **FAST)
    assert text2image(description, generator=generator) == "No result."
    with pytest.raises(ToolError) as caught:
        generator.generate(description)
    assert caught.value.results_text == "No result."
    assert pngs(tmp_path) == []


def test_a_pipeline_failure_gives_no_result(tmp_path: Path) -> None:
    def broken(prompt: str, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory")

    generator = ImageGenerator(pipeline=broken, output_dir=tmp_path)
    assert text2image("a cat", generator=generator) == "No result."
    with pytest.raises(ToolError, match="out of memory"):
        generator.generate("a cat")


def test_generation_over_the_time_limit_fails(tiny_pipeline: Any, tmp_path: Path) -> None:
    generator = ImageGenerator(pipeline=tiny_pipeline, output_dir=tmp_path, timeout=1e-6, **FAST)
    with pytest.raises(ToolError, match="longer than"):
        generator.generate("a slow painting")
    assert pngs(tmp_path) == []
    # The interrupt flag is reset by the pipeline on its next call.
    ok = ImageGenerator(pipeline=tiny_pipeline, output_dir=tmp_path, **FAST)
    assert ok.generate("a quick sketch").exists()


def test_slow_pipeline_without_step_callbacks_is_timed_out(tmp_path: Path) -> None:
    class Slow:
        def __call__(self, prompt: str, **kwargs: Any) -> Any:
            assert "callback_on_step_end" not in kwargs
            time.sleep(0.2)
            return SimpleNamespace(images=[Image.new("RGB", (8, 8))])

    generator = ImageGenerator(pipeline=Slow(), output_dir=tmp_path, timeout=0.05)
    assert text2image("anything", generator=generator) == "No result."
    with pytest.raises(ToolError, match="longer than 0.05 s"):
        generator.generate("anything")
    assert pngs(tmp_path) == []


# ----------------------------------------------------------------------------- loading failures


# huggingface_hub may try a metadata request even for local-only loads; pytest-socket blocks it.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_missing_model_offline_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    generator = ImageGenerator(model_id="no-such-org/no-such-model", output_dir=tmp_path, device="cpu")
    with pytest.raises(ToolError) as caught:
        generator.generate("a cat")
    message = str(caught.value)
    assert "'no-such-org/no-such-model'" in message
    assert "local folder" in message and "MOSS_AGENT_T2I_MODEL" in message
    assert caught.value.results_text == "No result."
    # The failure is remembered: the next call fails fast, and the model still sees "No result.".
    assert text2image("a cat", generator=generator) == "No result."
    assert generator.load_count == 0
    message = text2image_tool(generator).invoke(tool_call("a cat"))
    assert (message.content, message.artifact) == ("No result.", None)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_missing_model_with_local_files_only_gives_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    generator = ImageGenerator(
        model_id="no-such-org/no-such-model", output_dir=tmp_path, device="cpu", local_files_only=True
    )
    assert text2image("a cat", generator=generator) == "No result."


# ----------------------------------------------------------------------------- configuration


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(t2i.MODEL_ENV_VAR, raising=False)
    monkeypatch.delenv(t2i.OUTPUT_DIR_ENV_VAR, raising=False)
    generator = ImageGenerator()
    assert generator.model_id == DEFAULT_MODEL_ID == "stabilityai/sd-turbo"
    assert generator.output_dir == Path("outputs/images")
    monkeypatch.setenv(t2i.MODEL_ENV_VAR, "/models/my-sd")
    monkeypatch.setenv(t2i.OUTPUT_DIR_ENV_VAR, str(tmp_path))
    generator = ImageGenerator()
    assert (generator.model_id, generator.output_dir) == ("/models/my-sd", tmp_path)


def test_turbo_defaults_and_overrides() -> None:
    def noop(prompt: str, **kwargs: Any) -> Any:
        return None

    turbo = ImageGenerator(model_id="stabilityai/sd-turbo", pipeline=noop)
    assert turbo._call_kwargs(noop, 0.0) == {"num_inference_steps": 1, "guidance_scale": 0.0}
    custom = ImageGenerator(
        model_id="stabilityai/sd-turbo", num_inference_steps=4, pipeline=noop, pipeline_kwargs={"height": 256}
    )
    assert custom._call_kwargs(noop, 0.0) == {"num_inference_steps": 4, "guidance_scale": 0.0, "height": 256}


@pytest.mark.parametrize("options", [{"timeout": 0}, {"num_inference_steps": 0}])
def test_bad_options_are_usage_errors(options: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        ImageGenerator(**options)


def test_auto_device_is_cpu_without_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert t2i._resolve_device("auto") == "cpu"
    assert t2i._resolve_device("cuda:1") == "cuda:1"


# ----------------------------------------------------------------------------- LangChain tool


def test_text2image_tool_returns_content_and_path_artifact(tiny_pipeline: Any, tmp_path: Path) -> None:
    tool = text2image_tool(ImageGenerator(pipeline=tiny_pipeline, output_dir=tmp_path, **FAST))
    assert tool.name == "Text2Image"
    assert tool.args_schema is Text2ImageInput
    message = tool.invoke(tool_call("a sunflower field"))
    assert isinstance(message, ToolMessage)
    assert message.content == "Image generated successfully."
    assert isinstance(message.artifact, str) and Path(message.artifact).is_file()
    assert Path(message.artifact).parent == tmp_path
    failed = tool.invoke(tool_call(""))
    assert (failed.content, failed.artifact) == ("No result.", None)


# ----------------------------------------------------------------------------- import hygiene


def test_importing_text2image_loads_neither_torch_nor_diffusers() -> None:
    code = (
        "import sys, json, moss_agent.tools.text2image; "
        "print(json.dumps([m for m in ('torch', 'diffusers', 'PIL') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"torch", "diffusers"} & set(json.loads(out.stdout))
