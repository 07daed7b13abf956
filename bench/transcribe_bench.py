"""Transcription: word error rate and real-time factor of faster-whisper models on spoken calls.

The bench makes its own audio: espeak-ng (a Debian package; `.ci/run` and `dev.py` install it
where they can) speaks a few short sales-call scripts into WAV files. Each model transcribes them
through the product's own path (`calls.transcribe.transcribe`, the settings a job uses) and is
scored against the scripts:

- word error rate (jiwer), over words lower-cased with punctuation removed ("$62,000" and
  "62000" are one word, as espeak reads the script's "$62,000" and whisper writes it back);
- real-time factor: seconds of transcription per second of audio (model loading excluded, shown
  apart; the first load includes importing faster-whisper), best of `--repeat` runs.

The reference is the bundled tiny.en (CRM_WHISPER_MODEL unset); every model passed with `--model`
(a directory or a hub name, as CRM_WHISPER_MODEL takes it) is measured in the same run and shown
with its ratio to the reference.

    .venv/bin/python -m bench.transcribe_bench
    .venv/bin/python -m bench.transcribe_bench --model /models/faster-whisper-small --threads 4
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from calls.transcribe import TranscriptionError, Whisper, clear_whisper_cache, load_whisper, probe_audio, transcribe

# What a rep says on a call: amounts, dates, weekdays, products. espeak-ng reads the digits; they are
# written as whisper writes them back, so that a mismatch is a word misheard, not a spelling.
SCRIPTS = [
    "Thanks for making time today. Where did you land on the pilot?",
    "We want the pilot in January. If you add the telematics module, we can go from $48,000 to $62,000.",
    "Great. I will send the revised quote by Thursday, and we can sign before the end of the quarter.",
    "Our procurement team needs the security questionnaire and a copy of the master services agreement.",
    "Can we schedule a demo for the operations team next Tuesday at 2 in the afternoon?",
    "The budget is approved for 120 seats, but legal wants a 30 day termination clause.",
]


@dataclass
class Figures:
    label: str
    load_s: float
    audio_s: float
    transcribe_s: float
    errors: float  # word error rate over all scripts
    hypothesis: list[str]

    @property
    def rtf(self) -> float:
        return self.transcribe_s / self.audio_s


def words(text: str) -> str:
    """Lower case, hyphens as spaces, punctuation (commas in numbers too) removed."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower().replace("-", " ")).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    import jiwer

    return float(jiwer.wer([words(t) for t in references], [words(t) or "-" for t in hypotheses]))


def speak_all(directory: Path, espeak: str, wpm: int) -> list[Path]:
    paths = []
    for number, text in enumerate(SCRIPTS):
        path = directory / f"call-{number}.wav"
        subprocess.run([espeak, "-v", "en-us", "-s", str(wpm), "-w", str(path), text], check=True,
                       capture_output=True, timeout=60)
        paths.append(path)
    return paths


def measure(label: str, whisper: Whisper, clips: list[Path], repeat: int, beam: int) -> Figures:
    clear_whisper_cache()
    started = time.perf_counter()
    load_whisper(whisper)
    load_s = time.perf_counter() - started
    audio_s = sum(probe_audio(clip) for clip in clips)
    best, texts = float("inf"), []
    for _ in range(repeat):
        started = time.perf_counter()
        texts = [transcribe(clip, whisper, beam_size=beam, temperature=0.0).text for clip in clips]
        best = min(best, time.perf_counter() - started)
    return Figures(label, load_s, audio_s, best, word_error_rate(SCRIPTS, texts), texts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=[],
                    help="a model to compare with tiny.en: a CTranslate2 directory or a hub name (repeatable)")
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 2, 2), help="CPU threads (default 2)")
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--beam", type=int, default=5, help="beam size (5: the product's default)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per model; the best counts")
    ap.add_argument("--wpm", type=int, default=150, help="espeak-ng speaking rate, words per minute")
    ap.add_argument("--show", action="store_true", help="print each transcript")
    args = ap.parse_args(argv)

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("espeak-ng is not installed (apt-get install espeak-ng): it speaks the bench's audio", file=sys.stderr)
        return 2
    models = [("tiny.en (bundled, reference)", "")] + [(m if len(m) <= 34 else "..." + m[-31:], m)
                                                       for m in args.model]
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="transcribe-bench-") as tmp:
        clips = speak_all(Path(tmp), espeak, args.wpm)
        for label, model in models:
            whisper = Whisper(model=model, compute_type=args.compute_type, cpu_threads=args.threads, language="en")
            try:
                results.append(measure(label, whisper, clips, args.repeat, args.beam))
            except TranscriptionError as exc:
                print(f"{label}: {exc}", file=sys.stderr)
                if not model:
                    return 1

    ref = results[0]
    print(f"{len(SCRIPTS)} clips, {ref.audio_s:.1f} s of espeak-ng speech ({args.wpm} wpm); {args.threads} threads, "
          f"{args.compute_type}, beam {args.beam}, best of {args.repeat}")
    print(f"{'model':<34} {'load s':>7} {'transcribe s':>13} {'RTF':>7} {'WER':>7} {'RTF/ref':>8} {'WER/ref':>8}")
    for r in results:
        wer_ratio = f"{r.errors / ref.errors:.2f}" if ref.errors else "-"
        print(f"{r.label:<34} {r.load_s:>7.2f} {r.transcribe_s:>13.2f} {r.rtf:>7.3f} {r.errors:>7.1%} "
              f"{r.rtf / ref.rtf:>8.2f} {wer_ratio:>8}")
    if args.show:
        for r in results:
            print(f"\n{r.label}:")
            for script, text in zip(SCRIPTS, r.hypothesis, strict=True):
                print(f"  said:  {script}\n  heard: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
