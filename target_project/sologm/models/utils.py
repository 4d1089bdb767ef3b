"""Small helpers shared by the models."""

import re


def slugify(text: str) -> str:
    """Turn ``text`` into a lowercase, dash separated slug.

    >>> slugify("The Lost  Mine!")
    'the-lost-mine'
    """
    text = text.lower().strip()
    text = re.sub(r"[^a-z0-9\s-]", "", text)
    text = re.sub(r"[\s_-]+", "-", text)
    return text.strip("-") or "untitled"
