"""Reading MNIST copies in every supported format, and refusing bad ones clearly."""

import gzip
import hashlib

import numpy as np
import pytest

from mnistexp.experiment.data import (
    KNOWN_CHECKSUMS,
    DataError,
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
