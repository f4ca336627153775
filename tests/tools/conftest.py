"""Fixtures for the tool tests: a tiny random diffusers pipeline built locally (nothing downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TINY_IMAGE_SIZE = 32
"""Side of the images the tiny pipeline makes: UNet sample size 16 x VAE scale factor 2."""


def _tiny_clip_tokenizer(folder: Path) -> Any:
    import inspect

    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(f"{char}</w>", len(vocab))
    if "vocab_file" not in inspect.signature(CLIPTokenizer.__init__).parameters:
        # transformers >= 5: the tokenizer takes the vocabulary and merges themselves.
        return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"), model_max_length=16
    )


def build_tiny_pipeline(workdir: Path) -> Any:
    """A StableDiffusionPipeline with random weights, a few hundred KB, making 32x32 images."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = _tiny_clip_tokenizer(workdir / "tokenizer-source")
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=TINY_IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
        attention_head_dim=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=2,
        sample_size=TINY_IMAGE_SIZE,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=32,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="session")
def tiny_image_size() -> int:
    """Width and height of the tiny pipeline's images."""
    return TINY_IMAGE_SIZE


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random text-to-image pipeline saved with ``save_pretrained`` (once per session)."""
    pytest.importorskip("diffusers")
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    workdir = tmp_path_factory.mktemp("tiny-t2i")
    folder = workdir / "pipeline"
    build_tiny_pipeline(workdir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_pipeline_dir: Path) -> Any:
    """The tiny pipeline loaded from its folder, shared by the tests that pass ``pipeline=``."""
    from diffusers import StableDiffusionPipeline

    pipeline = StableDiffusionPipeline.from_pretrained(tiny_pipeline_dir, local_files_only=True)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
