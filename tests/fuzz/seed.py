"""Writes the fuzz targets' seed corpus under corpus/<target>/: valid inputs and known-hostile
ones, for the mutations to start from. Run once; the output is checked in, and a crash found
later is added beside them as a regression seed. `python3 tests/fuzz/seed.py`"""

import base64
import io
import json
import pathlib
import shutil
import stat
import zipfile

HERE = pathlib.Path(__file__).parent
FIXTURES = HERE.parent / "fixtures" / "benchling-events"
CORPUS = HERE / "corpus"


def write(target, name, data):
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def archive(members, *, compression=zipfile.ZIP_DEFLATED, zip64=False):
    """members: (name, bytes) or (ZipInfo, bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression, allowZip64=True) as z:
        for name, data in members:
            if zip64 and isinstance(name, str):
                with z.open(name, "w", force_zip64=True) as member:
                    member.write(data)
            else:
                z.writestr(name, data)
    return out.getvalue()


def symlink(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.create_system = 3
    return info, target.encode()


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)

    # Webhook payloads: every recorded webhook, and bodies the parser must refuse.
    for fixture in sorted(FIXTURES.glob("*.json")):
        body = json.loads(fixture.read_text())
        if isinstance(body, dict) and "message" in body:
            write("webhook_payload", fixture.name, json.dumps(body))
    write("webhook_payload", "nested.json", "[" * 200 + "]" * 200)
    write("webhook_payload", "not-utf8.bin", b'{"message": "\xff\xfe"}')
    write("webhook_payload", "no-message.json", '{"baseURL": "https://x.benchling.com"}')

    # Signature headers: one, several, other versions, and broken items.
    sig = base64.b64encode(bytes(range(70))).decode()
    write("signature_header", "one", f"v1der,{sig}")
    write("signature_header", "several", f"v1,abc v1der,{sig} v2der,{sig}")
    write("signature_header", "nine", " ".join([f"v1der,{sig}"] * 9))
    write("signature_header", "no-comma", "v1der")
    write("signature_header", "two-commas", f"v1der,{sig},x")
    write("signature_header", "not-base64", "v1der,***")

    # Button ids: current and upstream formats.
    for n, button in enumerate([
        "q1.m.etr_OtsAuzfT",
        "q1.u.etr_OtsAuzfT",
        "q1.b.etr_OtsAuzfT.2.15",
        "q1.d.etr_OtsAuzfT.0.15.YmVuY2hsaW5nL0VYUDI1MDAwMDA3",
        "browse-files-etr_abc-p0-s15",
        "view-metadata-etr_abc-pkg-benchling--EXP-p1-s20",
        "update-package-etr_abc",
        "etr_abc",
    ]):
        write("button_id", f"{n}", button)

    # Quilt package events.
    event = {"detail-type": "package-revision", "detail": {
        "bucket": "quilt-bucket", "handle": "benchling/EXP25000007", "topHash": "ab" * 32}}
    write("package_event", "revision.json", json.dumps(event))
    write("package_event", "no-hash.json", json.dumps({"detail": {"bucket": "b", "handle": "p/q"}}))
    write("package_event", "empty.json", json.dumps({"detail": {"bucket": "", "handle": ""}}))

    # Member names: raw bytes as a central directory holds them.
    for n, name in enumerate([
        b"results/report.pdf", b"plate.csv", b"a/b/c/", b"../evil", b"/etc/passwd",
        b"C:\\win.ini", b"a\\..\\b", b"a/./b", b"a//b", b"nul\x00byte", "r\u00e9sum\u00e9.txt".encode(),
        b"\x80\x81cp437", b"x" * 1100,
    ]):
        write("member_name", f"{n}", name)

    # Archives: what Benchling exports, and what an attacker would send instead.
    write("archive", "deflated.zip", archive([("results/report.pdf", b"%PDF" * 500), ("plate.csv", b"well,od\nA1,0.5\n")]))
    write("archive", "stored.zip", archive([("a.txt", b"hello"), ("dir/", b"")], compression=zipfile.ZIP_STORED))
    write("archive", "zip64.zip", archive([("big.bin", b"\0" * 4096)], zip64=True))
    write("archive", "slip.zip", archive([("../../etc/cron.d/x", b"x")]))
    write("archive", "absolute.zip", archive([("/tmp/x", b"x")]))
    write("archive", "symlink.zip", archive([symlink("link", "/etc/passwd")]))
    write("archive", "duplicate.zip", archive([("same.txt", b"one"), ("same.txt", b"two")]))
    write("archive", "bomb.zip", archive([("zeros.bin", b"\0" * (3 << 20))]))
    whole = archive([("a.txt", b"hello" * 100)])
    write("archive", "truncated-directory.zip", whole[:-10])
    write("archive", "empty.zip", archive([]))


if __name__ == "__main__":
    main()
