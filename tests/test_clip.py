"""CLIP and the word tokenizer (issue 37): the contrastive loss equals its formula, retrieval recall equals a hand
computation (captions that repeat count as hits), the tokenizer round-trips and refuses unknown words in one line,
embeddings are unit-norm and blind to pads, and a short CLI run trains, evaluates and samples."""
import json
import math

import pytest
import torch

import dgm
from dgm.cli import main
from dgm.data import load_dataset
from dgm.data.tokenizer import Tokenizer
from dgm.errors import DgmError
from dgm.metrics.retrieval import recall_at_k, retrieval_from_embeddings
from dgm.models import build_model
from dgm.models.clip import MAX_SCALE
from dgm.objectives.contrastive import clip_loss

WORDS = ["a", "and", "large", "left", "one", "small", "top", "two"]


def _model(**kw):
    spec = dict(data_kind="captioned", channels=1, height=32, width=32, levels=256, num_classes=10, vocab=WORDS,
                text_length=6, embed_dim=8, hidden=4, text_dim=8, text_heads=2)
    torch.manual_seed(0)
    return build_model("clip", {**spec, **kw}).eval()


# -- the loss ---------------------------------------------------------------------------------------------------
def test_contrastive_loss_equals_its_formula_on_hand_picked_embeddings():
    s = 1 / math.sqrt(2)
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [s, s]])
    txt = torch.tensor([[1.0, 0.0], [s, s], [0.0, 1.0]])
    scale = torch.tensor(3.0)
    dot = [[sum(a * b for a, b in zip(i, t)) for t in txt.tolist()] for i in img.tolist()]
    logits = [[3.0 * d for d in row] for row in dot]

    def ce(rows):  # mean over rows i of -log softmax(row_i)[i]
        return sum(math.log(sum(math.exp(v) for v in r)) - r[i] for i, r in enumerate(rows)) / len(rows)

    want = (ce(logits) + ce([list(c) for c in zip(*logits)])) / 2
    assert float(clip_loss(img, txt, scale)) == pytest.approx(want, rel=1e-6)
    # perfectly matched pairs at a high scale: the loss goes to 0; swapping the texts makes it large
    eye = torch.eye(3)
    assert float(clip_loss(eye, eye, torch.tensor(100.0))) < 1e-6
    assert float(clip_loss(eye, eye[[1, 2, 0]], torch.tensor(100.0))) > 50


# -- retrieval ----------------------------------------------------------------------------------------------------
def test_retrieval_recall_equals_a_hand_computation_with_a_repeated_caption():
    # 4 images with captions a, b, a, c: 3 distinct captions; images = identity, so sim[u, n] is texts[u, n]
    caption_ids = torch.tensor([0, 1, 0, 2])
    sim = torch.tensor([[0.1, 0.3, 0.9, 0.0],   # a: top image 2, whose caption is a (not image 0): a hit
                        [0.2, 0.8, 0.3, 0.1],   # b: image 1, a hit
                        [0.7, 0.1, 0.6, 0.3]])  # c: image 0 (a): a miss
    r = retrieval_from_embeddings(torch.eye(4), sim, caption_ids)
    assert r["text_to_image_r1"] == pytest.approx(2 / 3)
    # image -> text, columns: image 0 (a) ranks c first: miss; 1 (b): b, hit; 2 (a): a, hit; 3 (c): c, hit
    assert r["image_to_text_r1"] == pytest.approx(3 / 4)
    assert r["text_to_image_r5"] == 1.0 and r["image_to_text_r5"] == 1.0  # k caps at the candidates


def test_recall_at_k_equals_a_brute_force_reference():
    g = torch.Generator().manual_seed(0)
    captions = ["a", "b", "c", "d", "e", "f", "g", "h"]
    owner = torch.randint(0, 8, (40,), generator=g)
    owner[:8] = torch.arange(8)  # every caption has an image
    img, txt = torch.randn(40, 5, generator=g), torch.randn(8, 5, generator=g)
    r = retrieval_from_embeddings(img, txt, owner)
    sim = (txt.double() @ img.double().T).tolist()
    for k in (1, 5):
        t2i = sum(any(owner[n] == u for n in sorted(range(40), key=lambda n: -sim[u][n])[:k]) for u in range(8)) / 8
        i2t = sum(captions[int(owner[n])] in [captions[u] for u in sorted(range(8), key=lambda u: -sim[u][n])[:k]]
                  for n in range(40)) / 40
        assert r[f"text_to_image_r{k}"] == pytest.approx(t2i) and r[f"image_to_text_r{k}"] == pytest.approx(i2t)
    assert recall_at_k(torch.tensor([[0.0, 1.0]]), torch.tensor([[True, False]]), (1, 2)) == {1: 0.0, 2: 1.0}


# -- the tokenizer ------------------------------------------------------------------------------------------------
def test_tokenizer_round_trips_and_pads():
    tok = Tokenizer.from_texts(["A small one top left", "a large two top left and a small one"])
    assert tok.words == sorted(WORDS)
    ids = tok.encode(["a small one", "A large two top left"], 6)
    assert ids.dtype == torch.int64 and ids.shape == (2, 6)
    assert ids[0, 3:].tolist() == [0, 0, 0] and (ids[0, :3] > 0).all() and (ids[1, :5] > 0).all()
    assert tok.decode(ids) == ["a small one", "a large two top left"]
    # distinct pads: position p padded with V + 1 + p, after every word id; decoding drops them too
    d = tok.encode("a small one", 6, distinct_pads=True)
    assert d[0, 3:].tolist() == [tok.pad_id(3), tok.pad_id(4), tok.pad_id(5)] == [12, 13, 14]
    assert torch.equal(d[0, :3], ids[0, :3]) and tok.decode(d) == ["a small one"]
    assert tok.vocab_size() == 9 and tok.vocab_size(6, distinct_pads=True) == 15
    assert tok.is_pad(d).tolist() == [[False] * 3 + [True] * 3]
    # the word list is the tokenizer: through JSON (the run config) it encodes the same
    again = Tokenizer(json.loads(json.dumps(tok.words)))
    assert torch.equal(again.encode(["a large two top left"], 6), ids[1:])


def test_tokenizer_refuses_unknown_words_in_one_line_naming_them():
    tok = Tokenizer(WORDS)
    with pytest.raises(DgmError) as e:
        tok.encode(["a smal one top rihgt"], 8)
    msg = str(e.value)
    assert "\n" not in msg and "'smal' (nearest: 'small')" in msg and "'rihgt'" in msg
    with pytest.raises(DgmError, match="has 7 words; this model reads at most 6"):
        tok.encode("a small one top left and a", 6)
    with pytest.raises(DgmError, match="empty text"):
        tok.encode([""], 6)


def test_captioned_batches_carry_token_ids_and_other_models_keep_labels():
    data = load_dataset("captions-digits", "val")
    x, y = data[3]
    assert y.dim() == 0 and int(y) == int(data.attributes[3, 0, 0])  # an image model: label = first item's class
    fields = data.text_fields()
    tok = Tokenizer(fields["vocab"])
    assert fields["text_length"] == max(len(c.split()) for c in data.captions) == 11
    text = data.with_text(lambda t: tok.encode(t, fields["text_length"]))
    x2, ids = text[3]
    assert torch.equal(x, x2) and ids.shape == (11,) and tok.decode(ids[None]) == [data.captions[3]]
    assert text.tensors()[1].shape == (len(data), 11) and torch.equal(text.labels, data.labels)
    assert data.text_ids is None and isinstance(data[3][1], torch.Tensor) and data[3][1].dim() == 0


# -- the model ----------------------------------------------------------------------------------------------------
def test_embeddings_are_unit_norm_and_blind_to_pads():
    m = _model()
    x = torch.randint(0, 256, (5, 1, 32, 32)).float()
    texts = ["a small one", "a large two top left", "one", "two top", "a small one top left"]
    img, txt = m.embed_images(x), m.embed_texts(texts)
    assert img.shape == txt.shape == (5, 8)
    torch.testing.assert_close(img.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(txt.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(m.embed_texts(m.tokenizer.encode(texts, 6)), txt)  # ids or strings: the same
    with torch.no_grad():  # the pad's embedding is never read: masked in attention and in the mean
        m.word_embedding.weight[0] += 5.0
    torch.testing.assert_close(m.embed_texts(texts), txt)
    torch.testing.assert_close(m.score(x, texts), (img * txt).sum(1))
    assert m.score(x, "a small one").shape == (5,)
    flat = _model(text_layers=0)
    torch.testing.assert_close(flat.embed_texts(texts).norm(dim=1), torch.ones(5))


def test_logit_scale_starts_at_clip_s_and_is_clamped_at_100():
    m = _model()
    assert float(m.scale.detach()) == pytest.approx(1 / 0.07)
    with torch.no_grad():
        m.log_scale.fill_(10.0)
    assert float(m.scale.detach()) == pytest.approx(MAX_SCALE)


def test_model_refuses_bad_texts_in_one_line():
    m = _model()
    for bad, match in ((["a smal one"], "nearest: 'small'"), (torch.zeros(2, 6, dtype=torch.int64), "pads only"),
                       (torch.full((1, 6), 99), "token ids in 0..8"),
                       (torch.ones(1, 5, dtype=torch.int64), r"\(n, 6\)")):
        with pytest.raises(DgmError, match=match):
            m.embed_texts(bad)
    with pytest.raises(DgmError, match="draws no images"):
        m.sample(2)
    with pytest.raises(DgmError, match="--text-layers 0 has none"):
        m.Config.refuse_unused({"text_layers": 0, "text_heads": 2})
    with pytest.raises(DgmError, match="must divide --text-dim"):
        _model(text_heads=3)


@pytest.mark.slow  # multi-second; moved out of the default run to keep it under 10 minutes
# -- the command line ---------------------------------------------------------------------------------------------
def test_cli_trains_evaluates_and_samples(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "clip", "--data", "captions-digits", "--steps", "40", "--batch-size", "64", "--out", str(run),
                 "--no-progress", "--embed-dim", "32", "--hidden", "16", "--text-dim", "32"]) == 0
    out = capsys.readouterr().out
    assert "val contrastive loss" in out
    val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [v for v in val if v.get("split") == "val"][-1]
    assert val["clip_loss"] < math.log(256) - 1  # well below chance (log of the 256 pairs of a validation batch)
    cfg = json.loads((run / "config.json").read_text())["model_config"]
    train_words = load_dataset("captions-digits", "train").words()
    assert cfg["data_kind"] == "captioned" and cfg["vocab"] == train_words and cfg["text_length"] == 11
    assert dgm.load(run).tokenizer.words == train_words  # the run config alone rebuilds the tokenizer

    assert main(["eval", str(run), "--metric", "retrieval"]) == 0
    r = json.loads(capsys.readouterr().out)
    for way in ("text_to_image", "image_to_text"):
        assert 0 <= r[f"{way}_r1"] <= r[f"{way}_r5"] <= 1
    assert r["retrieval_images"] == 4000 and r["captions"] == "all" and r["provenance"]["step"] == 40
    assert r["image_to_text_r5"] > 5 / r["retrieval_captions"]  # better than chance
    assert main(["eval", str(run), "--captions", "unseen"]) == 0
    assert json.loads(capsys.readouterr().out)["retrieval_images"] == 2000
    assert main(["eval", str(run), "--captions", "seen", "--split", "val"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--captions", "unseen", "--split", "val"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no such images" in err and "\n" not in err

    assert main(["sample", str(run), "-n", "3", "--out", str(tmp_path / "r.png")]) == 0
    lines = (tmp_path / "r.txt").read_text().splitlines()
    assert (tmp_path / "r.png").is_file() and len(lines) == 3


def test_cli_refuses_clip_on_data_without_captions(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "clip", "--data", "digits", "--steps", "1", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs captioned images" in err and "captions-digits" in err and "\n" not in err
    assert not (out / "config.json").exists()


@pytest.mark.slow  # multi-process (about 30 s: each process builds the captioned splits)
def test_ddp_two_processes_equal_one_process_on_the_union_batch(tmp_path):
    """Each process gathers the others' embeddings (differentiably), so the contrastive loss of 2 x 16 pairs is the
    one-process loss of the 32 pairs, and the weights after 3 steps agree."""
    import os
    import subprocess
    import sys

    from conftest import ROOT, torchrun
    from dgm import checkpoint as ckpt

    common = ["train", "clip", "--data", "captions-digits", "--batch-size", "32", "--steps", "3", "--n-samples", "0",
              "--no-progress", "--device", "cpu", "--embed-dim", "8", "--hidden", "4", "--text-dim", "8",
              "--text-heads", "2", "--log-every", "1", "--optimizer", "sgd", "--lr", "0.5"]
    # SGD: Adam would blow the float noise in the gradient of the attention's key bias (zero in exact arithmetic:
    # softmax ignores a constant added to every logit of a row) up to full steps that differ between the two runs
    torchrun(common, tmp_path / "ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "dgm.cli", *common, "--out", str(tmp_path / "one")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    a, b = (ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / r)) for r in ("ddp", "one"))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    losses = [[json.loads(line)["loss"] for line in (tmp_path / r / "metrics.jsonl").read_text().splitlines()
               if json.loads(line).get("split") == "train"] for r in ("ddp", "one")]
    assert len(losses[0]) == 3 and losses[0] == pytest.approx(losses[1], rel=1e-5)
    init = build_model("clip", json.loads((tmp_path / "one" / "config.json").read_text())["model_config"])
    assert max((v - b["model"][k]).abs().max().item() for k, v in init.state_dict().items()) > 1e-4
