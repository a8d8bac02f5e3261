"""Extraction from Debian SWORD packages, and the shipped built-in corpus."""

from __future__ import annotations

import hashlib
import lzma
import re
import shutil
from importlib import resources

import pytest

from model.corpus import debian
from model.corpus.sources import read_builtin

needs_diatheke = pytest.mark.skipif(shutil.which("diatheke") is None, reason="diatheke is not installed")


def test_missing_diatheke_names_apt_command(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match=r"needs the diatheke command.*run `apt-get install -y .*diatheke sword-text-web"):
        debian.check_installed()


def test_parse_entries_joins_continuation_lines():
    output = (
        "Genesis 3:14: Yahweh God said to the serpent,\n"
        "you are cursed above all livestock,\n"
        '  <title canonical="true" type="psalm">A psalm.</title> <lg sID="x"/>II Kings 1:1: Moab rebelled.\n'
        "(engWEB2015eb)\n"
    )
    entries = debian.parse_entries(output, "engWEB2015eb")
    assert entries[0][:3] == ("Genesis", 3, 14)
    assert entries[0][3] == "Yahweh God said to the serpent,\nyou are cursed above all livestock,"
    assert entries[1] == ("II Kings", 1, 1, "Moab rebelled.")
    assert len(entries) == 2


def test_commentary_overlap_is_cut():
    first = "Verses 1-2 " + "first entry text. " * 20
    second = "Verses 3-5 " + "second entry text. " * 20
    third = "Verses 6-9 " + "third entry text. " * 20
    # SWORD prints each entry followed by the entries after it, once per verse it covers.
    output = (
        f"Genesis 1:1: {first}{second}{third}\n"
        f"Genesis 1:2: {first}{second}{third}\n"
        f"Genesis 1:3: {second}{third}\n"
        "Genesis 1:4: \n"
        f"Genesis 1:5: {third}\n"
    )
    assert debian.commentary_entries(output, "MHCC") == [first.strip(), second.strip(), third.strip()]


def test_strongs_tags_become_spaces():
    output = "Genesis 1:1: In <H0430> the <H0853> beginning <H7225>, God <H0430>created <H1254> the earth.\n"
    assert debian.bible_chapters(output) == ["Genesis 1\nIn the beginning, God created the earth."]


@needs_diatheke
def test_web_chapter_from_diatheke():
    module = debian.SwordModule("engWEB2015eb", "sword-text-web", "Gen 1:1-Gen 2:25", "World English Bible")
    chapters = debian.bible_chapters(debian._run_diatheke(module))
    assert [c.split("\n")[0] for c in chapters] == ["Genesis 1", "Genesis 2"]
    assert chapters[0].startswith("Genesis 1\nIn the beginning, God created the heavens and the earth.")
    assert "<" not in chapters[0]


def test_builtin_matches_provenance():
    data = resources.files("model.corpus").joinpath("builtin", "english_pd.txt.xz").read_bytes()
    text = lzma.decompress(data)
    provenance = resources.files("model.corpus").joinpath("builtin", "PROVENANCE.md").read_text()
    assert hashlib.sha256(text).hexdigest() in provenance
    words = re.search(r"words \| ([\d,]+)", provenance).group(1)
    assert len(text.split()) == int(words.replace(",", ""))


def test_builtin_documents():
    source = read_builtin()
    assert source.licence == "public domain"
    assert len(source.documents) == 4664
    assert source.documents[0].startswith("Genesis 1\nIn the beginning")
    assert all(source.documents)
    assert source.invalid_utf8_sequences == 0


@pytest.mark.slow
def test_builtin_prepares_with_defaults(tmp_path):
    from model.corpus import Corpus, prepare_corpus

    info = prepare_corpus("builtin", tmp_path / "builtin")
    assert info.source_sha256 == "79d8e4bcc63bb317d14e43a862896eb2fe573702b8fc73f8c9d60152b12fb6da"
    assert info.licence == "public domain"
    assert info.vocab_size == 4096
    assert info.num_documents_train + info.num_documents_val == 4664
    assert info.num_tokens_train > 3_000_000
    assert info.num_tokens_val > 150_000
    corpus = Corpus.open(tmp_path / "builtin", verify_checksums=True)
    assert int(corpus.train.max()) < 4096


@pytest.mark.slow
@needs_diatheke
def test_debian_extraction_matches_builtin(tmp_path):
    path = tmp_path / "rebuilt.txt.xz"
    summary = debian.write_builtin(str(path))
    shipped = resources.files("model.corpus").joinpath("builtin", "english_pd.txt.xz").read_bytes()
    assert summary["text_sha256"] == hashlib.sha256(lzma.decompress(shipped)).hexdigest()
