#!/usr/bin/env python3
"""Makes reference.json: for each text, the token ids Hugging Face's `tokenizers` gives (as
sentence-transformers feeds them to the model: [CLS] … [SEP], truncated at max_seq_length) and
sentence-transformers' own embedding (PyTorch, CPU). Run once; CI compares against the file.

    python3 -m venv /tmp/st && /tmp/st/bin/pip install "torch==2.13.0+cpu" sentence-transformers==6.2.0 tokenizers==0.23.3
    /tmp/st/bin/python make_reference.py MODEL_DIR   (scripts/fetch-model.sh prints MODEL_DIR)
"""
import json
import os
import sys

from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer

TEXTS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "deadline for the sales report",
    "the quarterly sales numbers are due Friday",
    "Café Ñandú résumé naïve Crème brûlée ÅNGSTRÖM",
    "İstanbul'da ŞİŞLİ ve ǅemal; straße ﬁnance ＦＵＬＬＷＩＤＴＨ",
    "北京是中国的首都。東京は日本の首都です。서울은 한국의 수도입니다.",
    "Emoji: 🚀🔥 👩‍💻 ❤️ 🇫🇷 — and a smiley :-)",
    "Visit https://example.com/path?query=1&x=%20y or mail someone@example.org",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)  # memo? [x**2 for x in range(10)]",
    "tabs\tand\nnewlines\r\nand\u00a0no-break\u2003em space\u200bzero width\u0007bell",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 150 + " y",
    "Ώρα για καφέ; Привет, мир! مرحبا بالعالم שלום עולם नमस्ते दुनिया",
    "$100 + 20% = <price> ^ `code` | ~tilde~ {braces} @at #hash",
    " ".join(f"word{i} is here" for i in range(120)),
    "Long texts are truncated: " + " ".join(["memory"] * 400),
]


def main(model_dir):
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    model = SentenceTransformer(model_dir, device="cpu")
    model.eval()
    max_length = model.max_seq_length
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    fed = model.tokenize(TEXTS)["input_ids"]
    vectors = model.encode(TEXTS, batch_size=8, convert_to_numpy=True)
    cases = []
    for index, text in enumerate(TEXTS):
        ids = tokenizer.encode(text).ids
        mask = [i for i in fed[index].tolist() if i != 0] if index else fed[index].tolist()[:2]
        assert ids == mask, f"tokenizers and sentence-transformers disagree on text {index}"
        cases.append({"text": text, "ids": ids, "embedding": [float(f"{v:.8g}") for v in vectors[index].tolist()]})
    out = {"model": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": max_length, "cases": cases}
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
