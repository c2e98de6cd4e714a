"""A small hand-written trilingual corpus with English-Spanish word links, shared by the loss and collator tests."""

from __future__ import annotations

from hf_xalign.tiny import train_tokenizer

# (English, Spanish, German, English-Spanish word links "i-j" over whitespace words)
CORPUS = [
    (
        "the red house is big",
        "la casa roja es grande",
        "das rote Haus ist groß",
        [(0, 0), (1, 2), (2, 1), (3, 3), (4, 4)],
    ),
    (
        "the cat sleeps on the sofa",
        "el gato duerme en el sofá",
        "die Katze schläft auf dem Sofa",
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)],
    ),
    ("I drink cold water", "yo bebo agua fría", "ich trinke kaltes Wasser", [(0, 0), (1, 1), (2, 3), (3, 2)]),
    ("we read a good book", "leemos un buen libro", "wir lesen ein gutes Buch", [(1, 0), (2, 1), (3, 2), (4, 3)]),
    (
        "the dog runs in the park",
        "el perro corre en el parque",
        "der Hund läuft im Park",
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)],
    ),
    (
        "my sister lives in Madrid",
        "mi hermana vive en Madrid",
        "meine Schwester wohnt in Madrid",
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)],
    ),
    (
        "the sun is hot today",
        "el sol está caliente hoy",
        "die Sonne ist heute heiß",
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)],
    ),
    (
        "children play in the garden",
        "los niños juegan en el jardín",
        "Kinder spielen im Garten",
        [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)],
    ),
    ("the train arrives late", "el tren llega tarde", "der Zug kommt spät an", [(0, 0), (1, 1), (2, 2), (3, 3)]),
    (
        "she writes a long letter",
        "ella escribe una carta larga",
        "sie schreibt einen langen Brief",
        [(0, 0), (1, 1), (2, 2), (3, 4), (4, 3)],
    ),
    ("good morning my friend", "buenos días mi amigo", "guten Morgen mein Freund", [(0, 0), (1, 1), (2, 2), (3, 3)]),
    (
        "the city is very beautiful",
        "la ciudad es muy bonita",
        "die Stadt ist sehr schön",
        [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)],
    ),
]


def corpus_tokenizer():
    """A tokenizer trained on every sentence of CORPUS."""
    texts = [sentence for english, spanish, german, _ in CORPUS for sentence in (english, spanish, german)]
    return train_tokenizer(texts, vocab_size=200)


def english_spanish_rows(count=4):
    """The first `count` pairs as collator rows (`src`, `tgt`, `alignment`)."""
    return [{"src": english, "tgt": spanish, "alignment": links} for english, spanish, _, links in CORPUS[:count]]
