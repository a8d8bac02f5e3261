"""Extract public-domain English prose from installed Debian SWORD packages.

The built-in corpus (``builtin/english_pd.txt.xz``) is the output of
:func:`extract_documents` written with :func:`write_documents`; builtin/PROVENANCE.md
records the package versions it came from. Three SWORD modules are read with
``diatheke`` (package ``diatheke``, SWORD 1.9):

- ``engWEB2015eb``: the World English Bible with deuterocanon (``sword-text-web``),
  one document per chapter;
- ``MHCC``: Matthew Henry's Concise Commentary (``sword-comm-mhcc``), one document
  per commentary entry;
- ``TDavid``: C. H. Spurgeon's Treasury of David (``sword-comm-tdavid``), Psalms 1-72,
  one document per psalm.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass

logger = logging.getLogger(__name__)

APT_COMMAND = (
    "apt-get install -y --no-install-recommends "
    "diatheke sword-text-web sword-comm-mhcc sword-comm-tdavid"
)
DEBIAN_PACKAGES = ("diatheke", "sword-text-web", "sword-comm-mhcc", "sword-comm-tdavid")


@dataclass(frozen=True)
class SwordModule:
    name: str
    package: str
    key_range: str
    title: str


WEB = SwordModule("engWEB2015eb", "sword-text-web", "Gen 1:1-Rev 22:21", "World English Bible")
MHCC = SwordModule("MHCC", "sword-comm-mhcc", "Gen 1:1-Rev 22:21", "Matthew Henry's Concise Commentary")
# Books I and II of the Psalter (Psalms 1-72) keep the corpus near 3 million words.
TDAVID = SwordModule("TDavid", "sword-comm-tdavid", "Ps 1:1-Ps 72:20", "Spurgeon's Treasury of David")
MODULES = (WEB, MHCC, TDAVID)

# A verse key at the start of a line, such as "II Kings 3:4: ". Some WEB lines carry a
# leaked OSIS psalm title and indentation before the key; those are removed first.
_KEY = re.compile(r"^([1-4IV]*\s?[A-Z][A-Za-z ()]*?) (\d+):(\d+):(?: |$)")
_OSIS_TITLE = re.compile(r"<title[^>]*>.*?</title>")
_OSIS_TAG = re.compile(r"<(?![GH]\d)[^>]+>")
# Strong's numbers (diatheke option "-o n") follow the word they tag. Without them the
# module text glues some words together ("Godcreated"), so the tags are requested and
# replaced by a space when a word follows, else removed.
_STRONGS = re.compile(r"\s*<[GH]\d+[a-z]?>")
_EMPHASIS = re.compile(r"\*")
_SPACES = re.compile(r"[ \t]+")


def diatheke_command(module: SwordModule) -> list[str]:
    """Build the diatheke command line that prints ``module`` as plain text."""
    options = ["-o", "n"] if module.name == WEB.name else []
    return ["diatheke", "-b", module.name, "-f", "plain", *options, "-k", module.key_range]


def check_installed() -> None:
    """Raise ValueError naming the apt-get command when diatheke or a module is missing."""
    if shutil.which("diatheke") is None:
        raise ValueError(
            f"the 'debian' corpus source needs the diatheke command, which is not installed; "
            f"run `{APT_COMMAND}` or use --source builtin"
        )
    listing = subprocess.run(
        ["diatheke", "-b", "system", "-k", "modulelist"], capture_output=True, text=True, check=False
    ).stdout
    missing = [m.package for m in MODULES if not re.search(rf"^{m.name} ", listing, re.MULTILINE)]
    if missing:
        raise ValueError(
            f"the 'debian' corpus source needs the SWORD packages {', '.join(missing)}, "
            f"which are not installed; run `{APT_COMMAND}` or use --source builtin"
        )


def package_versions() -> dict[str, str]:
    """Return the installed version of each Debian package the extraction reads."""
    versions = {}
    for package in DEBIAN_PACKAGES:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False
        )
        versions[package] = result.stdout.strip() if result.returncode == 0 else "unknown"
    return versions


def _run_diatheke(module: SwordModule) -> str:
    command = diatheke_command(module)
    logger.info("running %s", " ".join(command))
    # diatheke prints "Error reading ulCompOffset" on stderr for MHCC while still
    # producing the text; the overlap removal below handles what it prints.
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"{' '.join(command)} failed with status {result.returncode}: {result.stderr[-500:]}")
    return result.stdout


def parse_entries(output: str, module_name: str) -> list[tuple[str, int, int, str]]:
    """Split diatheke plain output into (book, chapter, verse, text) entries.

    Lines without a verse key continue the previous entry; the closing ``(MODULE)`` line is dropped.
    """
    entries: list[tuple[str, int, int, list[str]]] = []
    for raw_line in output.splitlines():
        if raw_line.strip() == f"({module_name})":
            continue
        line = _OSIS_TAG.sub("", _OSIS_TITLE.sub("", raw_line))
        match = _KEY.match(line.lstrip())
        if match:
            book, chapter, verse = match.group(1).strip(), int(match.group(2)), int(match.group(3))
            entries.append((book, chapter, verse, [line.lstrip()[match.end():]]))
        elif entries:
            entries[-1][3].append(line)
    return [(book, chapter, verse, "\n".join(lines)) for book, chapter, verse, lines in entries]


def _clean(text: str) -> str:
    text = _STRONGS.sub("\x00", text)
    text = re.sub(r"\x00+(?=\w)", " ", text).replace("\x00", "")
    text = _EMPHASIS.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def bible_chapters(output: str) -> list[str]:
    """Join the verses of each chapter into one document headed by the chapter name."""
    chapters: dict[tuple[str, int], list[str]] = {}
    for book, chapter, _verse, text in parse_entries(output, WEB.name):
        verse_text = " ".join(_clean(text).split("\n"))
        if verse_text:
            chapters.setdefault((book, chapter), []).append(verse_text)
    return [f"{book} {chapter}\n" + " ".join(verses) for (book, chapter), verses in chapters.items()]


def commentary_entries(output: str, module_name: str) -> list[str]:
    """Return each commentary entry once, cut where the next entry's text begins.

    SWORD 1.9 prints MHCC entries past their end (up to about 50 KB into the following
    entries), and repeats an entry for every verse it covers. Cutting each entry at the
    first occurrence of the next distinct entry's opening restores the entries one by one.
    """
    # Raw entries repeat (about 266 MB of MHCC output), so duplicates go before cleaning.
    raw = dict.fromkeys(text for _book, _chapter, _verse, text in parse_entries(output, module_name))
    distinct = [t for t in dict.fromkeys(_clean(text) for text in raw) if t]
    documents = []
    for index, text in enumerate(distinct):
        if index + 1 < len(distinct):
            opening = distinct[index + 1][:200]
            cut = text.find(opening)
            if cut > 0:
                text = text[:cut].rstrip()
            elif cut == 0:
                continue
        documents.append(text)
    return list(dict.fromkeys(documents))


def extract_documents() -> list[str]:
    """Extract every document of the Debian corpus, in a fixed order."""
    check_installed()
    documents = bible_chapters(_run_diatheke(WEB))
    documents += commentary_entries(_run_diatheke(MHCC), MHCC.name)
    documents += commentary_entries(_run_diatheke(TDAVID), TDAVID.name)
    logger.info("extracted %d documents from %s", len(documents), ", ".join(m.name for m in MODULES))
    return documents


def write_builtin(path: str) -> dict:
    """Extract the documents and write them xz-compressed to ``path``; return counts and checksums.

    Regenerate the shipped file with ``python -m model.corpus.debian model/corpus/builtin/english_pd.txt.xz``.
    """
    import hashlib
    import lzma

    from model.corpus.sources import join_documents

    text = join_documents(extract_documents()).encode("utf-8")
    # Preset 9e and CRC64 are fixed so that the same packages give the same compressed bytes.
    compressed = lzma.compress(text, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)
    with open(path, "wb") as handle:
        handle.write(compressed)
    return {
        "documents": text.count(b"\n\f\n") + 1,
        "words": len(text.split()),
        "text_bytes": len(text),
        "text_sha256": hashlib.sha256(text).hexdigest(),
        "compressed_bytes": len(compressed),
        "compressed_sha256": hashlib.sha256(compressed).hexdigest(),
        "packages": package_versions(),
    }


if __name__ == "__main__":
    import json
    import sys

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(json.dumps(write_builtin(sys.argv[1]), indent=2))
