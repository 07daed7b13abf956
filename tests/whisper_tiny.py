"""A tiny random-weight Whisper in CTranslate2 format, for tests (no model hub needed).

`build_tiny_whisper(dest)` builds, with transformers and tokenizers, a Whisper with
d_model 64, one encoder and one decoder layer and two heads, and a byte-level BPE
vocabulary laid out like OpenAI's: text tokens, then <|endoftext|>, <|startoftranscript|>,
one token per language, <|translate|>, <|transcribe|>, <|startoflm|>, <|startofprev|>,
<|nospeech|>, <|notimestamps|>, then the timestamp tokens <|0.00|> .. <|30.00|> (faster-whisper
takes `<|notimestamps|> + 1 + n` as timestamp n). It is converted with
`ctranslate2.converters.TransformersConverter`, as a real checkpoint is by
`ct2-transformers-converter`, into a directory `faster_whisper.WhisperModel` loads.

CTranslate2 (4.8) treats a Whisper as multilingual (language detection, <|xx|> and task
tokens in the prompt) when its vocabulary holds the empty token "", as OpenAI's
multilingual vocabulary does; `multilingual=True` (the default) adds it and one language
token per language faster-whisper knows, `multilingual=False` gives an English-only model
(no language or task tokens in the prompt). Either is about 1.5 MB.

The weights are random (seeded, so the same on every run); the text the model produces is
garbage. What tests check with it is the plumbing: loading, decoding audio, segments,
timestamps, language, progress. Random weights never choose to stop, so callers bound the
tokens per window (faster-whisper's `max_new_tokens`). With `temperature=0` decoding is greedy
and every 30 s window yields at least one segment of printable text (see `quiet` below);
faster-whisper's default temperatures fall back to sampling (random weights always have a low
log probability), so what it produces then varies from run to run.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

FILES = ("model.bin", "config.json", "vocabulary.json", "tokenizer.json", "preprocessor_config.json")
N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> in steps of 0.02 s

_CORPUS = [
    "Hello, thanks for joining the call today. Can you hear me?",
    "We looked at the proposal and the pricing works for our team.",
    "Let's schedule a follow-up next Tuesday with procurement and legal.",
    "The renewal is due at the end of the quarter; budget is approved.",
    "Ines Duarte from Borealis asked about the onboarding timeline.",
    "Sounds good. I will send the contract and the security questionnaire.",
]


def special_tokens(languages: list[str]) -> list[str]:
    """Whisper's special tokens in OpenAI's order; <|notimestamps|> last, the timestamps follow it."""
    return ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{code}|>" for code in languages],
            "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
            "<|notimestamps|>"]


def _tokenizer(specials: list[str], multilingual: bool):
    """Byte-level BPE trained on a few sentences, then Whisper's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=alphabet, special_tokens=[], show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    if multilingual:
        # The empty token that CTranslate2 looks for (it is never produced by encoding).
        spec = json.loads(tok.to_str())
        spec["model"]["vocab"][""] = len(spec["model"]["vocab"])
        tok = Tokenizer.from_str(json.dumps(spec))
    tok.add_special_tokens(specials)
    return tok


def _unprintable(text: str) -> bool:
    return not text.strip() or "\ufffd" in text or any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def build_tiny_whisper(dest: Path, *, multilingual: bool = True, n_mels: int = 80, seed: int = 0) -> Path:
    """Build the model into `dest` (replaced if it exists) and return `dest`.

    n_mels: 80 like tiny..large-v2, 128 like large-v3 and turbo (preprocessor_config.json says so).
    """
    import ctranslate2
    import torch
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from transformers import GenerationConfig, PreTrainedTokenizerFast, WhisperConfig, WhisperForConditionalGeneration
    from transformers.utils import logging as hf_logging

    dest = Path(dest)
    languages = list(_LANGUAGE_CODES) if multilingual else []
    specials = special_tokens(languages)
    tok = _tokenizer(specials, multilingual)
    ids = {t: tok.token_to_id(t) for t in specials}
    eot, sot, no_ts = ids["<|endoftext|>"], ids["<|startoftranscript|>"], ids["<|notimestamps|>"]
    n_tokens = tok.get_vocab_size()
    if list(ids.values()) != list(range(eot, n_tokens)):
        raise AssertionError("special tokens must be contiguous, after the text tokens, <|notimestamps|> last")

    hf_logging.disable_progress_bar()
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with tempfile.TemporaryDirectory(prefix="tiny-whisper-src-") as tmp:
            src = Path(tmp)
            PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                    unk_token="<|endoftext|>", pad_token="<|endoftext|>").save_pretrained(src)
            config = WhisperConfig(
                vocab_size=n_tokens + N_TIMESTAMPS, num_mel_bins=n_mels, d_model=64,
                encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448,
                decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
                suppress_tokens=[], begin_suppress_tokens=[eot],
            )
            torch.manual_seed(seed)
            model = WhisperForConditionalGeneration(config)
            # Logit 0 (never the greedy choice among random logits) for <|endoftext|>, the other special
            # tokens, and byte tokens that decode to blanks, control characters or half a UTF-8
            # character: every window then yields at least one segment of printable text.
            quiet = [i for i in range(n_tokens) if i >= eot or _unprintable(tok.decode([i]))]
            with torch.no_grad():
                for weight in {model.model.decoder.embed_tokens.weight, model.proj_out.weight}:
                    weight[quiet] = 0.0
            # A generation config of its own (one derived from the model config is dropped on load):
            # the converter takes the language ids (CTranslate2's lang_ids) and suppressed tokens from it.
            model.generation_config = GenerationConfig(
                decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
                no_timestamps_token_id=no_ts, suppress_tokens=[], begin_suppress_tokens=[eot],
                is_multilingual=multilingual,
                lang_to_id={f"<|{code}|>": ids[f"<|{code}|>"] for code in languages} if multilingual else {},
            )
            model.save_pretrained(src)
            # faster-whisper reads the feature extractor's settings (mel bins, 30 s windows) from here.
            (src / "preprocessor_config.json").write_text(json.dumps({
                "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": n_mels, "hop_length": 160,
                "chunk_length": 30, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000,
                "sampling_rate": 16000, "padding_side": "right", "padding_value": 0.0,
                "return_attention_mask": False,
            }))
            converter = ctranslate2.converters.TransformersConverter(
                str(src), copy_files=["tokenizer.json", "preprocessor_config.json"])
            converter.convert(str(dest), quantization=None, force=True)
    finally:
        hf_logging.set_verbosity(previous)
        logging.getLogger("transformers").setLevel(previous)
    missing = [name for name in FILES if not (dest / name).is_file()]
    if missing:
        raise AssertionError(f"the conversion left out {missing}")
    return dest
