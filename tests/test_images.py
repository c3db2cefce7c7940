"""multitask.data.images: every PIL mode to RGB against a numpy reference; bombs and broken files named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from multitask.data.datasets import ImageDataset, UnreadableImageError, load_image
from multitask.data.images import image_problem, read_rgb, to_rgb
from multitask.errors import LabelError, UserError

RNG = np.random.default_rng(0)


def gray3(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=2).astype(np.uint8)


def over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Reference compositing in float64: c * a + 255 * (1 - a), rounded."""
    a = alpha.astype(np.float64)[..., None] / 255
    return np.round(rgb * a + 255 * (1 - a)).astype(np.uint8)


def test_sixteen_bit_is_scaled_by_65535_not_clipped(tmp_path: Path) -> None:
    values = RNG.integers(0, 65536, size=(6, 7)).astype(np.uint16)
    values[0, :3] = (0, 65535, 32768)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    expected = gray3(np.round(values.astype(np.float64) * 255 / 65535))
    got = read_rgb(path)
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert got[0, :3, 0].tolist() == [0, 255, 128]
    assert (got < 255).mean() > 0.9  # PIL's own convert would saturate almost every pixel


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_sixteen_bit_modes(mode: str) -> None:
    values = RNG.integers(0, 65536, size=(4, 5)).astype(np.uint16)
    dtype = ">u2" if mode == "I;16B" else "<u2"
    image = Image.frombytes(mode, (5, 4), values.astype(dtype).tobytes())
    expected = gray3(np.round(values.astype(np.float64) * 255 / 65535))
    assert np.abs(to_rgb(image).astype(int) - expected).max() <= 1


def test_int32_mode_clips_to_the_16_bit_range() -> None:
    values = np.array([[-5, 0, 257, 65535, 100000]], dtype=np.int32)
    got = to_rgb(Image.fromarray(values, mode="I"))[0, :, 0]
    assert got.tolist() == [0, 0, 1, 255, 255]


def test_float_mode_maps_0_1_to_0_255() -> None:
    values = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, np.nan]], dtype=np.float32)
    got = to_rgb(Image.fromarray(values, mode="F"))[0, :, 0]
    assert got.tolist() == [0, 128, 255, 255, 0, 0]


def test_palette_with_and_without_transparency() -> None:
    palette = RNG.integers(0, 256, size=(256, 3)).astype(np.uint8)
    index = RNG.integers(0, 256, size=(5, 6)).astype(np.uint8)
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette.ravel().tolist())
    np.testing.assert_array_equal(to_rgb(image), palette[index])
    image.info["transparency"] = int(index[0, 0])
    expected = palette[index].copy()
    expected[index == index[0, 0]] = 255
    np.testing.assert_array_equal(to_rgb(image), expected)


def test_cmyk() -> None:
    cmyk = RNG.integers(0, 256, size=(4, 4, 4)).astype(np.uint8)
    image = Image.frombytes("CMYK", (4, 4), cmyk.tobytes())
    c = cmyk.astype(np.float64)
    expected = np.round((255 - c[..., :3]) * (255 - c[..., 3:]) / 255).astype(np.uint8)
    assert np.abs(to_rgb(image).astype(int) - expected).max() <= 1


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_modes_composite_over_white(mode: str) -> None:
    channels = 4 if mode == "RGBA" else 2
    data = RNG.integers(0, 256, size=(5, 5, channels)).astype(np.uint8)
    image = Image.frombytes(mode, (5, 5), data.tobytes())
    colour = data[..., :3] if mode == "RGBA" else np.repeat(data[..., :1], 3, axis=2)
    expected = over_white(colour.astype(np.float64), data[..., -1])
    assert np.abs(to_rgb(image).astype(int) - expected).max() <= 1


def test_one_bit_gray_and_rgb() -> None:
    bits = RNG.integers(0, 2, size=(4, 8)).astype(bool)
    np.testing.assert_array_equal(to_rgb(Image.fromarray(bits)), gray3(bits * 255))
    gray = RNG.integers(0, 256, size=(3, 4)).astype(np.uint8)
    np.testing.assert_array_equal(to_rgb(Image.fromarray(gray, mode="L")), gray3(gray))
    rgb = RNG.integers(0, 256, size=(3, 4, 3)).astype(np.uint8)
    np.testing.assert_array_equal(to_rgb(Image.fromarray(rgb, mode="RGB")), rgb)


def test_load_image_resizes_a_16_bit_png(tmp_path: Path) -> None:
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((10, 10), 32896, dtype=np.uint16)).save(path)  # 32896 / 257 = 128
    tensor = load_image(path, 4)
    assert tensor.shape == (3, 4, 4) and tensor.dtype == torch.uint8
    assert int(tensor.min()) == int(tensor.max()) == 128


def bomb(path: Path, side: int = 30000) -> Path:
    """A PNG whose header declares side × side pixels (the data is tiny and broken)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_is_a_label_error_naming_the_file(tmp_path: Path) -> None:
    path = bomb(tmp_path / "huge.png")
    with pytest.raises(LabelError, match=r"huge\.png.*30000x30000|huge\.png.*decompression-bomb") as error:
        read_rgb(path)
    assert error.value.file == str(path)
    assert "decompression-bomb" in image_problem(path)
    between = bomb(tmp_path / "big.png", side=10000)  # over the limit, under twice it: Pillow only warns
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(LabelError, match="10000x10000"):
        read_rgb(between)


def truncated_png(path: Path) -> Path:
    Image.fromarray(RNG.integers(0, 256, size=(64, 64, 3)).astype(np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_image_header_fine_data_broken(tmp_path: Path) -> None:
    path = truncated_png(tmp_path / "cut.png")
    assert image_problem(path) is None  # the header check alone cannot see it
    assert "broken" in image_problem(path, decode=True)
    with pytest.raises(UnreadableImageError, match=r"cut\.png.*--data\.missing_images skip") as error:
        load_image(path, 8)
    assert isinstance(error.value, UserError)


def test_broken_image_in_a_dataloader_worker_gives_one_clean_line(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    bad = truncated_png(tmp_path / "cut.png")
    dataset = ImageDataset([str(good), str(bad)], np.zeros((2, 1)), np.ones((2, 1), bool), image_size=8)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=1)
    with pytest.raises(UnreadableImageError) as error:
        list(loader)
    message = str(error.value)
    assert "Traceback" not in message and "worker" not in message and "\n" not in message
    assert "cut.png" in message and "cannot decode image" in message
