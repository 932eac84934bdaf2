#!/usr/bin/env python3
"""Writes the tokenizer fixtures in tests/data/text/ from HF tokenizers + transformers.

  /root/.cache/fiber-ref-venv/bin/python tests/reference/make_tokenizer.py [--gpt2-dir DIR]

1. Trains a byte-level BPE (HF ByteLevelBPETokenizer) on generated multilingual text and saves it
   in roberta-base's layout: vocab.json (ids dense, <s>=0 <pad>=1 </s>=2 <unk>=3, <mask> last,
   JSON with \\u escapes like GPT-2's encoder.json) and merges.txt (a "#version: 0.2" header).
2. Loads it with transformers' RobertaTokenizerFast(vocab_file, merges_file) (positional: in
   transformers 5 the keyword vocab_file= is ignored and a 5-token default vocabulary is built,
   so the script checks the vocabulary size) with the defaults add_prefix_space=False,
   trim_offsets=True, and records for generated and hand-written strings: ids, offsets
   (offset_mapping) and char_to_token for every character position (roberta_cases.json);
   truncation/padding cases (roberta_truncation.json); ill-formed UTF-8 decoded as Python's
   errors="replace" does, then encoded (roberta_invalid_utf8.json); decode results
   (roberta_decode.json).
3. With --gpt2-dir (a folder with GPT-2's vocab.json and merges.txt, e.g. from the PyPI package
   openai-whisper==20230124, whisper/assets/gpt2/), records HF's byte-level BPE on those files
   (gpt2_reference.json); the C++ test uses it when FIBER_GPT2_DIR points at the same folder.

Everything is seeded: re-running writes identical files.
"""
import argparse
import json
import os
import random

from tokenizers import ByteLevelBPETokenizer, Tokenizer, models, pre_tokenizers, processors
from transformers import RobertaTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/data/text")

ENGLISH = """the of and to in is you that it he was for on are as with his they at be this have from
or one had by word but not what all were we when your can said there use an each which she do how
their if will up other about out many then them these so some her would make like him into time has
look two more write go see number no way could people my than first water been call who oil its now
find long down day did get come made may part over new sound take only little work know place year
live me back give most very after thing our just name good sentence man think say great where help
through much before line right too mean old any same tell boy follow came want show also around
form three small set put end does another well large must big even such because turn here why ask
went men read need land different home us move try kind hand picture again change off play spell
air away animal house point page letter mother answer found study still learn should America world
red mug left laptop cat dog person table chair car bus bicycle umbrella banana pizza photo image
camera robot phrase ground region box shows standing sitting holding wearing white black blue green
Hello World OpenAI RoBERTa FIBER Swin Transformer GPU CPU NASA USA IBM""".split()
ACCENTED = ("café naïve résumé über straße façade jalapeño crème brûlée São Paulo Zürich Ångström "
            "déjà vu coöperate piñata Øresund Łódź Dvořák Ελλάδα ελληνικά señor niño École").split()
CYRILLIC = "привет мир Москва слово книга дом человек хорошо Россия Україна съешь ещё этих".split()
ARABIC = "مرحبا بالعالم كتاب اللغة العربية سلام شكرا جميل مدرسة".split()
HEBREW = "שלום עולם ספר".split()
GREEK = "καλημέρα κόσμε λόγος".split()
DEVANAGARI = "नमस्ते दुनिया हिन्दी भाषा".split()
THAI = "สวัสดีครับ ภาษาไทย".split()
CJK = "你好 世界 中文 汉字 北京 東京 日本語 こんにちは カタカナ ひらがな 한국어 안녕하세요 서울".split()
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "Vie\u0323\u0302t", "Z\u0351\u0358a\u0362l\u0334g\u0315o",
             "o\u0327\u0301", "\u0915\u093f", "x\u20dd"]
EMOJI = ["😀", "🎉", "👍", "👍🏽", "❤️", "🔥", "🤖", "🐱", "👨\u200d👩\u200d👧\u200d👦", "👩🏽\u200d💻",
         "🏳️\u200d🌈", "🇫🇷", "🇯🇵", "1️⃣", "#️⃣", "🧑\u200d🚀", "☕", "✨", "🫠", "🫶🏻"]
NUMBERS = ["0", "7", "42", "123", "2024", "3.14159", "1,000,000", "10%", "$5.99", "€20", "12:30",
           "2026-11-23", "+1-555-0100", "٣٤٥", "५६७", "１２３", "²", "½", "Ⅻ", "①", "0x1F", "1e-9", "99th"]
PUNCT = list(".,;:!?-()[]{}\"'`/\\@#$%^&*_+=<>|~") + ["...", "—", "–", "…", "“", "”", "‘", "’", "«",
                                                     "»", "¿", "¡", "。", "、", "！", "？", "·", "•", "§", "©", "™"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL",
                "'D", "'Re", "'lL", "’s", "'"]
BASES_FOR_CONTRACTION = ["it", "don", "we", "they", "I", "you", "she", "IT", "DON", "WE", "THEY",
                         "John", "cat", "o", ""]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\t\t", "\u00a0", "\u3000", "\u2009",
          "\u202f", "\u2028", "\u0085", "\u000b", "\u000c", " \u00a0 ", "\u180e", "\u200b", "\u1680"]
RARE = ["\U00011f04\U00011f05", "\U00010d50\U00010d51", "\U00010940", "\U000e0041", "\ue000", "\ufffd",
        "\u0000", "\u0007", "\U0001d400\U0001d401", "\U00031350", "\u2060", "\ufeff", "\U0010fffd"]
SPECIAL_IN_TEXT = ["<mask>", "<s>", "</s>", "<pad>", "<unk>", "<mask", "<<s>>", "< s>", "<MASK>"]


def word(rng):
    r = rng.random()
    if r < 0.45:
        w = rng.choice(ENGLISH)
        if rng.random() < 0.15:
            w = w.capitalize() if rng.random() < 0.7 else w.upper()
        return w
    pools = [ACCENTED, CYRILLIC, ARABIC, HEBREW, GREEK, DEVANAGARI, THAI, CJK, NUMBERS]
    weights = [8, 6, 4, 2, 2, 2, 2, 6, 8]
    return rng.choice(rng.choices(pools, weights)[0])


def sentence(rng, n_words, extras=True):
    parts = []
    for i in range(n_words):
        if i:
            parts.append(rng.choice(SPACES) if extras and rng.random() < 0.12 else " ")
        r = rng.random()
        if extras and r < 0.06:
            parts.append(rng.choice(BASES_FOR_CONTRACTION) + rng.choice(CONTRACTIONS))
        elif extras and r < 0.11:
            parts.append(rng.choice(EMOJI))
        elif extras and r < 0.14:
            parts.append(word(rng) + rng.choice(COMBINING))
        elif extras and r < 0.15:
            parts.append(rng.choice(RARE))
        else:
            parts.append(word(rng))
        if extras and rng.random() < 0.15:
            parts.append(rng.choice(PUNCT))
    if extras and rng.random() < 0.3:
        parts.append(rng.choice(".!?…。"))
    if extras and rng.random() < 0.1:
        parts.append(rng.choice(SPACES))
    return "".join(parts)


def training_corpus():
    rng = random.Random(1234)
    lines = [sentence(rng, rng.randint(3, 25)) for _ in range(30000)]
    # Frequent multi-space and newline runs, so merges like "ĠĠ" exist.
    lines += ["    indented code line", "a\n\nb", "tabs\tand\tspaces  here"] * 200
    return lines


def write_vocab_and_merges():
    trainer = ByteLevelBPETokenizer(add_prefix_space=False)
    trainer.train_from_iterator(training_corpus(), vocab_size=4000, min_frequency=2,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    vocab = trainer.get_vocab()
    assert [vocab[t] for t in ["<s>", "<pad>", "</s>", "<unk>"]] == [0, 1, 2, 3]
    vocab["<mask>"] = len(vocab)
    ordered = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    assert list(ordered.values()) == list(range(len(ordered)))
    with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(ordered, f, ensure_ascii=True)
    merges = trainer._tokenizer.model  # saved by the model itself for the exact file layout
    tmp = os.path.join(OUT, ".tmp_model")
    os.makedirs(tmp, exist_ok=True)
    merges.save(tmp)
    os.replace(os.path.join(tmp, "merges.txt"), os.path.join(OUT, "merges.txt"))
    os.remove(os.path.join(tmp, "vocab.json"))
    os.rmdir(tmp)
    return len(ordered)


HANDWRITTEN = [
    "", " ", "  ", "\n", "a", "Hello world", " Hello world", "Hello  world", "Hello world ",
    "Hello world  ", "  leading and trailing  ", "tab\tseparated\tvalues", "line1\nline2\r\nline3\n",
    "a\n\n\nb", "x \n y", "it's", "It'S", "we're WE'RE they've THEY'VE I'm I'M you'll YOU'LL he'd HE'D",
    "don't DON'T can't", "''s", "'s'", "' s", "don’t (curly)", "rock'n'roll", "O'Neil's", "'ll'll",
    "the red mug left of the laptop", "A person holding an umbrella.", "café", "cafe\u0301",
    "naïve résumé", "Straße", "привет, мир!", "مرحبا بالعالم", "你好，世界。", "こんにちは世界",
    "안녕하세요", "नमस्ते", "👍", "👍🏽", "👨\u200d👩\u200d👧\u200d👦 family", "🏳️\u200d🌈", "🇫🇷🇯🇵",
    "1️⃣2️⃣", "emoji😀inside", "123", " 123", "12 345", "3.14159", "٣٤٥", "１２３", "x²+y²", "½ cup",
    "Ⅻ", "...", "!!!???", "a—b–c", "«quote»", "“quoted”", "$5.99", "100%", "e-mail",
    "non\u00a0breaking", "ideographic\u3000space", "\u3000\u3000", "trailing nbsp\u00a0",
    "\u00a0", " \u00a0", "\u00a0 ", "a \u00a0 b", "thin\u2009space", "\u2028line sep", "nel\u0085x",
    "vt\u000bff\u000c", "mongolian\u180evowel", "zero\u200bwidth", "\ufeffbom", "nul\u0000char",
    "\U00011f04\U00011f05 kawi", "\U00010d50 garay", "\U00010940 sidetic", "\ue000 private",
    "\ufffd replacement", "a <mask> b", "a<mask>b", "<s>", "</s>", "<pad><unk>", "<s>x</s>",
    "<mask", "<<mask>>", " <mask>", "<mask> ", "<MASK>", "<s ></s>", "   \n\t  \r\n  ",
    "a" * 300, "ab" * 200, "🤖" * 50, " " * 40 + "x", "word " * 60,
]


def char_to_token_all(enc, n_chars):
    return [(-1 if (t := enc.char_to_token(i)) is None else t) for i in range(n_chars + 1)]


def roberta_cases(tok):
    rng = random.Random(5678)
    strings = list(HANDWRITTEN)
    while len(strings) < 1100:
        n = rng.choice([1, 2, 3, 5, 8, 12, 20, 30])
        s = sentence(rng, n)
        if rng.random() < 0.05:
            s = s + rng.choice(SPECIAL_IN_TEXT) + sentence(rng, 2)
        strings.append(s)
    cases = []
    for s in strings:
        enc = tok(s, return_offsets_mapping=True)
        cases.append({"text": s, "ids": enc["input_ids"],
                      "offsets": [list(o) for o in enc["offset_mapping"]],
                      "char_to_token": char_to_token_all(enc, len(s))})
    return cases


def truncation_cases(tok):
    rng = random.Random(91011)
    strings = HANDWRITTEN[:12] + [sentence(rng, rng.choice([3, 8, 20])) for _ in range(40)]
    cases = []
    for i, s in enumerate(strings):
        for max_length in (2, 3, 5, 8, 16, 40):
            mode = ["truncate_pad", "truncate", "pad"][(i + max_length) % 3]
            kwargs = {"max_length": max_length}
            if mode in ("truncate_pad", "truncate"):
                kwargs["truncation"] = True
            if mode in ("truncate_pad", "pad"):
                kwargs["padding"] = "max_length"
            enc = tok(s, return_offsets_mapping=True, **kwargs)
            cases.append({"text": s, "max_length": max_length, "truncate": "truncation" in kwargs,
                          "pad": "padding" in kwargs, "ids": enc["input_ids"],
                          "attention_mask": enc["attention_mask"],
                          "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                          "offsets": [list(o) for o in enc["offset_mapping"]],
                          "char_to_token": char_to_token_all(enc, len(s))})
    return cases


def invalid_utf8_cases(tok):
    rng = random.Random(1213)
    bad = [b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
           b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe", b"\xe3\x80", b"\xe3", b"\xf0\x9f\x98",
           b"\xf0\x9f", b"\xc3", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xf8\x88\x80\x80\x80"]
    cases = []
    for k in range(80):
        pieces = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.5:
                pieces.append(rng.choice(bad))
            else:
                pieces.append(sentence(rng, rng.randint(1, 3)).encode("utf-8"))
        if k < len(bad):
            pieces = [b"ab ", bad[k], b" cd"]
        raw = b"".join(pieces)
        text = raw.decode("utf-8", errors="replace")
        enc = tok(text, return_offsets_mapping=True)
        cases.append({"hex": raw.hex(), "replaced": text, "first_invalid": first_invalid(raw),
                      "ids": enc["input_ids"], "offsets": [list(o) for o in enc["offset_mapping"]]})
    return cases


def first_invalid(raw):
    try:
        raw.decode("utf-8")
        return -1
    except UnicodeDecodeError as e:
        return e.start


def decode_cases(tok, vocab_size):
    rng = random.Random(1415)
    cases = []
    backend = tok.backend_tokenizer
    for k in range(120):
        if k < 60:
            ids = tok(sentence(rng, rng.randint(1, 10)))["input_ids"]
        else:
            ids = [rng.randrange(vocab_size) for _ in range(rng.randint(1, 12))]
        cases.append({"ids": ids, "text": backend.decode(ids, skip_special_tokens=False),
                      "text_skip_special": backend.decode(ids, skip_special_tokens=True)})
    return cases


def gpt2_reference(folder):
    vocab, merges = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    tok = Tokenizer(models.BPE.from_file(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.add_special_tokens(["<|endoftext|>"])
    rng = random.Random(1617)
    strings = HANDWRITTEN[:60] + ["Hello world", "<|endoftext|>The end"] + \
        [sentence(rng, rng.randint(2, 20)) for _ in range(60)]
    with open(merges, encoding="utf-8") as f:
        n_merges = sum(1 for line in f if not line.startswith("#version"))
    cases = []
    for s in strings:
        enc = tok.encode(s)
        cases.append({"text": s, "ids": enc.ids, "offsets": [list(o) for o in enc.offsets]})
    return {"vocab_size": tok.get_vocab_size(with_added_tokens=False), "merges": n_merges, "cases": cases}


def dump(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpt2-dir")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    vocab_size = write_vocab_and_merges()
    tok = RobertaTokenizerFast(os.path.join(OUT, "vocab.json"), os.path.join(OUT, "merges.txt"))
    assert len(tok) == vocab_size, f"RobertaTokenizerFast saw {len(tok)} tokens, expected {vocab_size}"
    assert tok.add_prefix_space is False and tok.backend_tokenizer.post_processor.trim_offsets
    assert tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]) == [0, 1, 2, 3, vocab_size - 1]
    dump("roberta_cases.json", roberta_cases(tok))
    dump("roberta_truncation.json", truncation_cases(tok))
    dump("roberta_invalid_utf8.json", invalid_utf8_cases(tok))
    dump("roberta_decode.json", decode_cases(tok, vocab_size))
    if args.gpt2_dir:
        dump("gpt2_reference.json", gpt2_reference(args.gpt2_dir))
    print(f"vocab {vocab_size} tokens; fixtures written to {OUT}")


if __name__ == "__main__":
    main()
