"""Reading MNIST copies in every supported format, and refusing bad ones clearly."""

import gzip
import hashlib

import numpy as np
import pytest

from mnistexp.experiment.data import (
    IDX_NAMES,
    KNOWN_CHECKSUMS,
    DataError,
    check_data_dir,
    content_sha256,
    idx_bytes,
    load_dataset,
    prepare_arrays,
    read_csv,
    read_idx,
    write_csv,
)
from tests.conftest import synthetic_digits, write_idx_dir


def test_idx_gz_and_raw_give_identical_arrays_and_checksums(tmp_path):
    gz = load_dataset(write_idx_dir(tmp_path / "gz", gz=True), verify=True)
    raw = load_dataset(write_idx_dir(tmp_path / "raw", gz=False), verify=True)
    assert np.array_equal(gz.x_train, raw.x_train) and np.array_equal(gz.y_test, raw.y_test)
    assert gz.checksums == raw.checksums
    assert gz.x_train.shape == (320, 28, 28) and gz.x_test.shape == (80, 28, 28)


def test_content_checksum_equals_sha256_of_decompressed_idx(tmp_path):
    images, _ = synthetic_digits(50)
    assert content_sha256(images) == hashlib.sha256(idx_bytes(images)).hexdigest()


def test_csv_and_npz_copies_have_the_same_checksums_as_idx(tmp_path):
    reference = load_dataset(write_idx_dir(tmp_path / "idx"))
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "mnist_train.csv", reference.x_train, reference.y_train, header=True)
    write_csv(csv_dir / "mnist_test.csv", reference.x_test, reference.y_test, header=False)
    npz_dir = tmp_path / "npz"
    npz_dir.mkdir()
    np.savez(npz_dir / "mnist.npz", x_train=reference.x_train, y_train=reference.y_train,
             x_test=reference.x_test, y_test=reference.y_test)
    for folder, fmt in ((csv_dir, "csv"), (npz_dir, "npz")):
        data = load_dataset(folder, verify=False)
        assert data.format == fmt
        assert data.checksums == reference.checksums


def test_csv_round_trip_is_bit_exact(tmp_path):
    images, labels = synthetic_digits(30)
    write_csv(tmp_path / "a.csv", images, labels)
    back_images, back_labels = read_csv(tmp_path / "a.csv")
    assert np.array_equal(back_images, images) and np.array_equal(back_labels, labels)


def test_unlabelled_test_csv_means_a_holdout_split(tmp_path):
    images, labels = synthetic_digits(200)
    write_csv(tmp_path / "train.csv", images, labels)
    unlabelled = images[:20].reshape(20, -1)
    np.savetxt(tmp_path / "test.csv", unlabelled, fmt="%d", delimiter=",",
               header=",".join(f"pixel{i}" for i in range(784)), comments="")
    data = load_dataset(tmp_path, verify=False, holdout_fraction=0.1)
    assert data.test_split == "holdout"
    assert len(data.y_test) == 20 and len(data.y_train) == 180
    assert np.array_equal(data.y_test, labels[-20:])


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_is_refused(tmp_path, gz):
    folder = write_idx_dir(tmp_path / "d", gz=gz, sums=False)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as info:
        load_dataset(folder, verify=False)
    assert name in str(info.value) and "truncated" in str(info.value)


def test_bad_magic_is_refused(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x01\x02\x03\x04" + b"\x00" * 100)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_wrong_checksum_in_sha256sums_names_expected_and_actual(fresh_data_dir):
    target = fresh_data_dir / "t10k-labels-idx1-ubyte.gz"
    labels = read_idx(target).copy()
    labels[0] = (labels[0] + 1) % 10
    target.write_bytes(gzip.compress(idx_bytes(labels), mtime=0))
    with pytest.raises(DataError) as info:
        load_dataset(fresh_data_dir)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "expected sha256" in message and "actual" in message


def test_known_dataset_verification_refuses_other_content(tmp_path):
    folder = write_idx_dir(tmp_path / "d", sums=False)
    with pytest.raises(DataError) as info:
        load_dataset(folder, dataset="mnist", verify=True)
    assert KNOWN_CHECKSUMS["mnist"]["train_images"] in str(info.value)
    assert "data.verify=false" in str(info.value)
    assert load_dataset(folder, dataset="mnist", verify=False).x_train.shape[0] == 320


def test_missing_data_dir_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no MNIST files found"):
        load_dataset(tmp_path / "empty")
    folder = write_idx_dir(tmp_path / "partial", sums=False)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_dataset(folder, verify=False)


def test_prepare_arrays_limits_splits_and_scales(tiny_data_dir):
    data = load_dataset(tiny_data_dir)
    arrays = prepare_arrays(data, {"train_limit": 100, "test_limit": 10, "validation_split": 0.1,
                                   "normalize": True}, [28, 28, 1])
    assert arrays["x_train"].shape == (90, 28, 28, 1) and arrays["x_val"].shape == (10, 28, 28, 1)
    assert arrays["x_test"].shape == (10, 28, 28, 1)
    assert arrays["x_train"].dtype == np.float32 and float(arrays["x_train"].max()) == 1.0
    assert np.array_equal(arrays["y_val"], data.y_train[90:100])


def test_real_mnist_verifies(shared_mnist):
    data = load_dataset(shared_mnist, dataset="mnist", verify=True)
    assert data.checksums == KNOWN_CHECKSUMS["mnist"]
    assert np.bincount(data.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_decoded_cache_returns_the_same_data_and_notices_changed_files(fresh_data_dir, tmp_path):
    from mnistexp.experiment.datacache import load_dataset_cached

    first = load_dataset_cached(fresh_data_dir, verify=True, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c" / "decoded").iterdir())) == 1
    again = load_dataset_cached(fresh_data_dir, verify=True, cache_dir=tmp_path / "c")
    assert again.checksums == first.checksums and np.array_equal(again.x_train, first.x_train)
    path = fresh_data_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes() + b"\0")  # now disagrees with SHA256SUMS
    with pytest.raises(DataError, match="wrong checksum"):
        load_dataset_cached(fresh_data_dir, verify=True, cache_dir=tmp_path / "c")


# ---------------------------------------------------------------- hostile files (issue 13)


@pytest.mark.parametrize("position", [20, 40, "middle", -6])
def test_gzip_with_flipped_bytes_is_one_line_naming_the_file(fresh_data_dir, position):
    path = fresh_data_dir / (IDX_NAMES["train_images"] + ".gz")
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if position == "middle" else position
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as info:
        load_dataset(fresh_data_dir, verify=False)
    message = str(info.value)
    assert message.startswith(str(path)) and "corrupt or truncated gzip file; download it again" in message


@pytest.mark.parametrize("keep", [0.5, 0.95, 30])
def test_truncated_npz_is_one_line(tmp_path, keep):
    images, labels = synthetic_digits(200)
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, x_train=images, y_train=labels, x_test=images[:50], y_test=labels[:50])
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path, verify=False)
    assert str(info.value).startswith(f"{path}: not a readable .npz file")
    assert "again" in str(info.value) and "\n" not in str(info.value)


def test_non_utf8_sha256sums_is_one_line(fresh_data_dir):
    (fresh_data_dir / "SHA256SUMS").write_bytes(b"\xff\xfe\x00garbage\x80\n")
    with pytest.raises(DataError, match=r"SHA256SUMS: not a text file; write it with `sha256sum"):
        load_dataset(fresh_data_dir)
    assert load_dataset(fresh_data_dir, verify=False).name == "mnist"  # verify=false ignores it


def test_sha256sums_cannot_reach_outside_the_folder(fresh_data_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    with open(fresh_data_dir / "SHA256SUMS", "a") as f:
        f.write(f"{'0' * 64}  ../secret.txt\n")
    with pytest.raises(DataError, match=r"lists '../secret.txt', outside the data folder"):
        load_dataset(fresh_data_dir)


@pytest.mark.parametrize("part", ["train_labels", "test_labels"])
def test_label_out_of_range_without_verification_names_the_file(tmp_path, part):
    folder = write_idx_dir(tmp_path / "data", sums=False)
    path = folder / (IDX_NAMES[part] + ".gz")
    labels = read_idx(path).copy()
    labels[[3, 7]] = (12, 255)
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError) as info:
        load_dataset(folder, verify=False)
    assert str(info.value) == (f"{path}: 2 label(s) out of range (largest 255); mnist has 10 classes, so labels "
                               "must be 0..9; fix the file or use the official mnist files")


# ---------------------------------------------------------------- check_data_dir: the cheap pre-flight


def test_check_data_dir_accepts_every_format(tiny_data_dir, tmp_path):
    assert check_data_dir(tiny_data_dir, "mnist") == "idx"
    data = load_dataset(tiny_data_dir)
    np.savez(tmp_path / "mnist.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
             y_test=data.y_test)
    assert check_data_dir(tmp_path, "fashion-mnist") == "npz"  # unknown labels: full check decides later
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "train.csv", data.x_train, data.y_train)
    write_csv(csv_dir / "test.csv", data.x_test, data.y_test)
    assert check_data_dir(csv_dir, "mnist") == "csv"


@pytest.mark.parametrize(
    "setup, fragment",
    [
        ("missing", "does not exist; pass a folder with the MNIST files to --data-dir"),
        ("file", "is a file; pass the folder that holds it to --data-dir"),
        ("empty", "no MNIST files found; expected the four IDX files"),
        ("partial", "IDX files missing: t10k-labels-idx1-ubyte[.gz]"),
        ("not-idx", "train-images-idx3-ubyte.gz: not an IDX file (gzip or raw); download it again"),
        ("bad-gz-labels", "t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip file"),
        ("not-npz", "mnist.npz: not a .npz file (no zip header)"),
        ("bad-sums", "SHA256SUMS: not a text file"),
    ],
)
def test_check_data_dir_refuses_unusable_folders(tmp_path, setup, fragment):
    folder = tmp_path / "data"
    if setup == "missing":
        pass
    elif setup == "file":
        folder.write_text("x")
    elif setup == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("x")
    elif setup == "not-npz":
        folder.mkdir()
        (folder / "mnist.npz").write_text("x_train,y_train\n")
    else:
        write_idx_dir(folder)
        if setup == "partial":
            (folder / (IDX_NAMES["test_labels"] + ".gz")).unlink()
        elif setup == "not-idx":
            (folder / (IDX_NAMES["train_images"] + ".gz")).write_text("<html>404</html>")
        elif setup == "bad-gz-labels":
            path = folder / (IDX_NAMES["test_labels"] + ".gz")
            path.write_bytes(path.read_bytes()[:30])
        elif setup == "bad-sums":
            (folder / "SHA256SUMS").write_bytes(b"\xff\xfe")
    with pytest.raises(DataError) as info:
        check_data_dir(folder, "mnist")
    assert fragment in str(info.value) and "\n" not in str(info.value)


def _real_test_labels(folder):
    return read_idx(folder / (IDX_NAMES["test_labels"] + ".gz"))


@pytest.mark.parametrize("fmt", ["idx", "npz", "csv"])
def test_check_data_dir_names_the_data_set_the_files_really_are(shared_mnist, tmp_path, fmt):
    """Real MNIST labels (the images are placeholders: only the labels are read) passed as Fashion-MNIST."""
    labels = _real_test_labels(shared_mnist)
    images = np.zeros((len(labels), 28, 28), np.uint8)
    folder = tmp_path / fmt
    if fmt == "idx":
        write_idx_dir(folder, n_train=20, n_test=20, sums=False)
        (folder / (IDX_NAMES["test_labels"] + ".gz")).write_bytes(
            (shared_mnist / (IDX_NAMES["test_labels"] + ".gz")).read_bytes())
    elif fmt == "npz":
        folder.mkdir()
        np.savez_compressed(folder / "data.npz", x_train=images[:5], y_train=labels[:5], x_test=images, y_test=labels)
    else:
        folder.mkdir()
        write_csv(folder / "train.csv", images[:5], labels[:5])
        write_csv(folder / "test.csv", images, labels, header=False)
    with pytest.raises(DataError) as info:
        check_data_dir(folder, "fashion-mnist")
    assert str(info.value).endswith("these are the MNIST files, not Fashion-MNIST; pass --dataset mnist "
                                    "(or --set data.dataset=mnist)")
    assert check_data_dir(folder, "mnist") == fmt


def test_check_data_dir_on_the_real_folders(shared_mnist):
    fashion = shared_mnist.parent / "fashion-mnist"
    if not fashion.is_dir():
        pytest.skip("no Fashion-MNIST copy")
    assert check_data_dir(fashion, "fashion-mnist") == "idx"
    with pytest.raises(DataError, match="these are the Fashion-MNIST files, not MNIST; pass --dataset fashion-mnist"):
        check_data_dir(fashion, "mnist")


def test_check_data_dir_does_not_import_tensorflow(tiny_data_dir):
    import subprocess
    import sys

    code = ("import sys; from mnistexp.experiment.data import check_data_dir; "
            f"check_data_dir({str(tiny_data_dir)!r}, 'mnist'); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
