"""The MOSS Text-to-image plugin: ``Text2Image(description)``.

:class:`ImageGenerator` wraps a ``diffusers`` text-to-image pipeline, loaded lazily and once,
and writes PNG files. :func:`text2image` is the model-facing function: it answers
``"Image generated successfully."`` (the text MOSS was trained on) or ``"No result."``.
:func:`text2image_tool` wraps it as a LangChain tool named ``Text2Image`` whose artifact is the
saved file's path.

Needs ``pip install 'moss-agent[image]'`` (diffusers, pillow). ``torch`` and ``diffusers`` are
imported on first use only.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from moss_agent.errors import MissingDependencyError, ToolError, UsageError
from moss_agent.protocol import IMAGE_GENERATED, NO_RESULT

__all__ = [
    "DEFAULT_MODEL_ID",
    "DEFAULT_OUTPUT_DIR",
    "MAX_DESCRIPTION_CHARS",
    "MODEL_ENV_VAR",
    "NO_RESULT",
    "OUTPUT_DIR_ENV_VAR",
    "SUCCESS",
    "ImageGenerator",
    "Text2ImageInput",
    "text2image",
    "text2image_tool",
]

MODEL_ENV_VAR = "MOSS_AGENT_T2I_MODEL"
"""Environment variable naming the diffusers model (hub id or local folder)."""
OUTPUT_DIR_ENV_VAR = "MOSS_AGENT_OUTPUT_DIR"
"""Environment variable naming the folder images are written to."""
DEFAULT_MODEL_ID = "stabilityai/sd-turbo"
"""A small, fast public model (Stable Diffusion 2.1 distilled for 1-step generation, 512×512)."""
DEFAULT_OUTPUT_DIR = Path("outputs") / "images"
"""Where images go when neither an argument nor ``MOSS_AGENT_OUTPUT_DIR`` says otherwise."""
MAX_DESCRIPTION_CHARS = 1000
"""Longest description accepted from the model, after stripping."""
SUCCESS = IMAGE_GENERATED
"""The Results text of a successful call, exactly as in MOSS's training data."""

_CALL_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    # Turbo models are distilled for one step without classifier-free guidance.
    "stabilityai/sd-turbo": {"num_inference_steps": 1, "guidance_scale": 0.0},
    "stabilityai/sdxl-turbo": {"num_inference_steps": 1, "guidance_scale": 0.0},
}
_counter = itertools.count()


class Text2ImageInput(BaseModel):
    """Arguments of the ``Text2Image`` tool."""

    description: str = Field(description="What the image should show.")


def _resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _dtype_keyword() -> str:
    # diffusers renamed `torch_dtype` to `dtype` (PR #14205) and warns on the old name;
    # older releases know only `torch_dtype`.
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _unique_png_name(description: str) -> str:
    # Timestamp + short hash: sortable, unique within the process, and free of model text.
    stamp = time.strftime("%Y%m%d-%H%M%S")
    seed = f"{description}\0{time.time_ns()}\0{os.getpid()}\0{next(_counter)}"
    return f"{stamp}-{hashlib.sha256(seed.encode('utf-8', 'replace')).hexdigest()[:12]}.png"


class ImageGenerator:
    """Generates images with a diffusers text-to-image pipeline and saves them as PNG.

    The pipeline is loaded on the first :meth:`generate` (thread-safe, once) with
    ``diffusers.AutoPipelineForText2Image.from_pretrained`` in fp16 on CUDA and fp32 elsewhere;
    no code from the checkpoint is executed. A failed load is remembered, so later calls fail
    fast with the same error. Calls are serialised: one pipeline runs one job at a time.

    Args:
        model_id: Hub id or local folder; defaults to ``$MOSS_AGENT_T2I_MODEL``, else
            :data:`DEFAULT_MODEL_ID`.
        output_dir: Folder for the PNG files (created when needed); defaults to
            ``$MOSS_AGENT_OUTPUT_DIR``, else ``./outputs/images``.
        device: ``"auto"`` (CUDA, else Apple MPS, else CPU), or a torch device string.
        num_inference_steps: Denoising steps; the model's recommended or the pipeline's default
            when omitted.
        timeout: Seconds one generation may take (loading not included). The pipeline is stopped
            cooperatively between steps once over time, and the call fails.
        pipeline: An already-built pipeline to use instead of loading ``model_id``.
        local_files_only: Never contact the hub; defaults to whether ``HF_HUB_OFFLINE`` is set.
        pipeline_kwargs: Extra keyword arguments for each pipeline call (``height``, ``width``,
            ``guidance_scale``, ``negative_prompt``, …).
    """

    def __init__(
        self,
        model_id: str | None = None,
        output_dir: str | Path | None = None,
        device: str = "auto",
        num_inference_steps: int | None = None,
        timeout: float = 300,
        *,
        pipeline: Any = None,
        local_files_only: bool | None = None,
        pipeline_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if timeout <= 0:
            raise UsageError("ImageGenerator needs timeout > 0")
        if num_inference_steps is not None and num_inference_steps < 1:
            raise UsageError("ImageGenerator needs num_inference_steps >= 1")
        self.model_id = model_id or os.environ.get(MODEL_ENV_VAR) or DEFAULT_MODEL_ID
        self.output_dir = Path(output_dir or os.environ.get(OUTPUT_DIR_ENV_VAR) or DEFAULT_OUTPUT_DIR)
        self.device = device
        self.num_inference_steps = num_inference_steps
        self.timeout = timeout
        self.local_files_only = local_files_only
        self.pipeline_kwargs = dict(pipeline_kwargs or {})
        self._pipeline = pipeline
        self._load_error: ToolError | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.load_count = 0
        """How many times a pipeline was loaded from ``model_id`` (0 or 1)."""

    @property
    def is_loaded(self) -> bool:
        """Whether the pipeline is in memory."""
        return self._pipeline is not None

    def load(self) -> Any:
        """Load the pipeline now (otherwise done by the first :meth:`generate`).

        Returns:
            The pipeline.

        Raises:
            MissingDependencyError: ``diffusers`` or ``torch`` is not installed.
            ToolError: The model could not be loaded (e.g. its weights are not available
                offline); the message names the model and what to do.
        """
        if self._pipeline is not None:
            return self._pipeline
        with self._load_lock:
            if self._pipeline is None:
                if self._load_error is not None:
                    raise self._load_error
                try:
                    self._pipeline = self._load_pipeline()
                except ToolError as error:
                    self._load_error = error
                    raise
                self.load_count += 1
            return self._pipeline

    def _load_pipeline(self) -> Any:
        try:
            import torch
            from diffusers import AutoPipelineForText2Image
        except ImportError as error:
            raise MissingDependencyError("diffusers", "image", "text-to-image") from error
        device = _resolve_device(self.device)
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        local_only = self.local_files_only
        if local_only is None:
            local_only = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
        try:
            pipeline = AutoPipelineForText2Image.from_pretrained(
                self.model_id,
                **{_dtype_keyword(): dtype},
                local_files_only=local_only,
                trust_remote_code=False,
            )
            pipeline = pipeline.to(device)
        except Exception as error:  # noqa: BLE001 - OSError, hub errors, blocked sockets, bad configs
            raise ToolError(
                f"could not load the text-to-image model {self.model_id!r} "
                f"({type(error).__name__}: {error}). If its weights are not available offline, "
                f"pass a local folder as model_id or set {MODEL_ENV_VAR} to one.",
                results_text=NO_RESULT,
            ) from error
        if hasattr(pipeline, "set_progress_bar_config"):
            pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def _call_kwargs(self, pipeline: Any, deadline: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(_CALL_DEFAULTS.get(self.model_id, {}))
        if self.num_inference_steps is not None:
            kwargs["num_inference_steps"] = self.num_inference_steps
        kwargs.update(self.pipeline_kwargs)

        def stop_when_late(pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> Any:
            if time.monotonic() > deadline:
                pipe._interrupt = True  # diffusers skips the remaining steps
            return callback_kwargs

        import inspect

        if "callback_on_step_end" in inspect.signature(pipeline.__call__).parameters:
            kwargs.setdefault("callback_on_step_end", stop_when_late)
        return kwargs

    def generate(self, description: str) -> Path:
        """Generate an image for ``description`` and save it as a PNG.

        Args:
            description: The model's description; stripped, 1–1000 characters.

        Returns:
            The path of the new PNG file, under :attr:`output_dir`.

        Raises:
            ToolError: Bad description, load failure, pipeline failure or time-out
                (``results_text`` ``"No result."``).
            MissingDependencyError: ``diffusers`` or ``torch`` is not installed.
        """
        if not isinstance(description, str):
            raise ToolError(f"the description must be text, not {type(description).__name__}")
        description = description.strip()
        if not description:
            raise ToolError("empty image description", results_text=NO_RESULT)
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise ToolError(
                f"image description longer than {MAX_DESCRIPTION_CHARS} characters", results_text=NO_RESULT
            )
        pipeline = self.load()
        with self._run_lock:
            started = time.monotonic()
            deadline = started + self.timeout
            try:
                output = pipeline(description, **self._call_kwargs(pipeline, deadline))
                image = output.images[0]
            except Exception as error:  # noqa: BLE001 - any pipeline failure is a tool failure
                raise ToolError(
                    f"image generation failed: {type(error).__name__}: {error}", results_text=NO_RESULT
                ) from error
            if time.monotonic() > deadline:
                raise ToolError(
                    f"image generation took longer than {self.timeout:g} s", results_text=NO_RESULT
                )
        return self._save(image, description)

    def _save(self, image: Any, description: str) -> Path:
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            path = self.output_dir / _unique_png_name(description)
            with path.open("xb") as file:  # "x": never overwrite an existing file
                image.save(file, format="PNG")
        except Exception as error:  # noqa: BLE001 - disk full, permissions, not an image
            raise ToolError(
                f"could not save the image: {type(error).__name__}: {error}", results_text=NO_RESULT
            ) from error
        return path


def _generate(description: str, generator: ImageGenerator | None) -> tuple[str, Path | None]:
    try:
        path = (generator or _default_generator()).generate(description)
    except ToolError:
        return NO_RESULT, None
    return SUCCESS, path


_default_lock = threading.Lock()
_default: ImageGenerator | None = None


def _default_generator() -> ImageGenerator:
    # One shared generator, so that the (large) default pipeline is loaded once per process.
    global _default
    with _default_lock:
        if _default is None:
            _default = ImageGenerator()
        return _default


def text2image(description: str, *, generator: ImageGenerator | None = None) -> str:
    """Run the model's ``Text2Image(description)`` call.

    Args:
        description: The model's image description.
        generator: The generator to use; a shared default :class:`ImageGenerator` when omitted.

    Returns:
        ``"Image generated successfully."`` or, on any tool failure, ``"No result."``.

    Raises:
        MissingDependencyError: ``diffusers`` or ``torch`` is not installed (a caller error).
    """
    return _generate(description, generator)[0]


def text2image_tool(generator: ImageGenerator | None = None) -> BaseTool:
    """Build the LangChain tool ``Text2Image``.

    The tool answers ``(content, artifact)``: content ``"Image generated successfully."`` or
    ``"No result."``, artifact the saved PNG's path as ``str`` (``None`` on failure). Tool
    failures never raise.

    Args:
        generator: The generator to use; a shared default :class:`ImageGenerator` when omitted.

    Returns:
        A :class:`~langchain_core.tools.StructuredTool` named ``"Text2Image"``.
    """

    def run_text2image(description: str) -> tuple[str, str | None]:
        content, path = _generate(description, generator)
        return content, None if path is None else str(path)

    return StructuredTool.from_function(
        func=run_text2image,
        name="Text2Image",
        description="Generate an image from a text description and save it as a PNG file.",
        args_schema=Text2ImageInput,
        response_format="content_and_artifact",
    )
