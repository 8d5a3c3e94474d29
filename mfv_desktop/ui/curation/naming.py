"""Is an object name usable as an answer? One word (validate_name), and one token for the model in
use — checked with the model's own tokenizer file and the family's answer rule (backends.registry),
without loading the model or torch."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from mfv_desktop.backends.registry import answer_ids, family_of
from mfv_desktop.errors import BackendError
from mfv_desktop.locations import bundled_folder
from mfv_desktop.scenes import SceneError, validate_name


def tokenizer_file(model: str) -> Path | None:
    """The tokenizer.json of a model reference ('bundled' or a model folder), None if unknown."""
    try:
        family = family_of(model)
    except BackendError:
        return None
    return family.tokenizer_file(bundled_folder() if model == "bundled" else Path(model))


@lru_cache(maxsize=4)
def _tokenizer(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def _unknown_id(tok) -> int | None:
    unk = tok.token_to_id("<unk>")
    return unk if unk is not None else tok.token_to_id("[UNK]")


@lru_cache(maxsize=4)
def single_token_words(model: str) -> list[str]:
    """The words the model knows as one answer token, sorted: every vocabulary entry that reads as
    a usable name (`validate_name`) and passes `check_name`'s rule. From the model's tokenizer file,
    as check_name reads it (no torch); [] when the model has none."""
    path = tokenizer_file(model)
    if path is None:
        return []
    tok = _tokenizer(str(path))
    prefix, unk = family_of(model).answer_prefix, _unknown_id(tok)
    candidates = set()
    for token_id in tok.get_vocab(with_added_tokens=False).values():  # special tokens are added ones
        word = tok.decode([token_id]).strip()
        try:
            candidates.add(validate_name(word))
        except SceneError:
            continue
    words = sorted(candidates)
    head = tok.encode(prefix.rstrip(), add_special_tokens=False).ids
    encoded = tok.encode_batch([prefix + w for w in words], add_special_tokens=False)
    return [
        w
        for w, e in zip(words, encoded)
        if e.ids[: len(head)] == head and len(e.ids) == len(head) + 1 and (unk is None or unk not in e.ids)
    ]


def check_name(name: str, model: str) -> tuple[bool, str]:
    """(usable, message): the message says why not, or how many tokens the name takes."""
    try:
        validate_name(name)
    except SceneError as e:
        return False, str(e)
    path = tokenizer_file(model)
    if path is None:
        return True, "one word (no tokenizer to check single tokens for this model)"
    tok = _tokenizer(str(path))
    unk = _unknown_id(tok)
    try:
        ids = answer_ids(
            lambda text: tok.encode(text, add_special_tokens=False).ids, name, family_of(model).answer_prefix, unk
        )
    except BackendError as e:
        return False, str(e)
    if not ids:
        return False, f"{name!r} is not in the model's vocabulary: pick a word the model knows"
    if len(ids) > 1:
        return False, f"{name!r} takes {len(ids)} tokens; answers are scored on the first token, use a one-token name"
    return True, f"{name!r} is one token"
