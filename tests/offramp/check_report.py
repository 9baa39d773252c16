#!/usr/bin/python3
"""Parse a delivery report with Python's `email` package (a MIME parser not written by us)
and print what it found as JSON, or exit 1 saying what is wrong.

Checks the RFC 3464 / RFC 6522 shape: multipart/report; report-type=delivery-status (or
disposition-notification for an MDN), first part text/plain (or, with the first page's
picture, multipart/alternative of text/plain and multipart/related [text/html, image/png]
whose HTML names the picture by cid:, the PNG decoded here), second part
message/delivery-status (or message/disposition-notification), and for a DSN a third part
message/rfc822 or text/rfc822-headers.

Usage: check_report.py FILE
"""
import email
import email.policy
import json
import struct
import sys
import zlib


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


raw = open(sys.argv[1], "rb").read()
if b"\n" in raw.replace(b"\r\n", b""):
    fail("bare LF in the message")
msg = email.message_from_bytes(raw, policy=email.policy.compat32)
if msg.defects:
    fail(f"message defects: {msg.defects}")
if msg.get_content_type() != "multipart/report":
    fail(f"content type is {msg.get_content_type()}")
rtype = msg.get_param("report-type")
parts = msg.get_payload()
if not isinstance(parts, list) or len(parts) < 2:
    fail("not a multipart with at least two parts")
for p in msg.walk():
    if p.defects:
        fail(f"part defects: {p.defects}")
def decode_png(data):
    """Width, height and rows of an 8-bit greyscale PNG (PNG spec §11.2.2, §9 filters)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("picture is not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            fail(f"PNG chunk {kind} CRC wrong")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, color = ihdr[0], ihdr[1], ihdr[2], ihdr[3]
    if (depth, color) != (8, 0):
        fail(f"PNG is not 8-bit grey: depth {depth} colour type {color}")
    raw = zlib.decompress(idat)
    rows, prev, i = [], bytearray(w), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + w])
        i += 1 + w
        for x in range(w):
            a = line[x - 1] if x else 0
            b, c = prev[x], prev[x - 1] if x else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, rows


def readable(part):
    """The summary text and, with a picture, the HTML and the decoded images."""
    if part.get_content_type() == "text/plain":
        return part.get_payload(decode=True).decode("utf-8"), None
    if part.get_content_type() != "multipart/alternative":
        fail(f"first part is {part.get_content_type()}")
    alts = part.get_payload()
    if alts[0].get_content_type() != "text/plain":
        fail("the alternative does not start with text/plain")
    rel = alts[-1]
    if rel.get_content_type() != "multipart/related" or rel.get_param("type") != "text/html":
        fail("the last alternative is not multipart/related; type=text/html")
    html_part, *images = rel.get_payload()
    if html_part.get_content_type() != "text/html":
        fail("multipart/related does not start with its text/html root")
    html = html_part.get_payload(decode=True).decode("utf-8")
    pics = []
    for im in images:
        cid = (im["Content-ID"] or "").strip("<>")
        if im.get_content_type() != "image/png" or f'src="cid:{cid}"' not in html:
            fail(f"image part {im.get_content_type()} {cid} is not a PNG named by the HTML")
        data = im.get_payload(decode=True)
        w, h, rows = decode_png(data)
        pics.append({"cid": cid, "width": w, "height": h, "bytes": len(data),
                     "rows": [list(r) for r in rows]})
    return alts[0].get_payload(decode=True).decode("utf-8"), {"html": html, "images": pics}


summary, picture = readable(parts[0])
out = {
    "report_type": rtype,
    "from": msg["From"],
    "to": msg["To"],
    "subject": str(email.header.make_header(email.header.decode_header(msg["Subject"] or ""))),
    "auto_submitted": msg["Auto-Submitted"],
    "parts": [p.get_content_type() for p in parts],
    "summary": summary,
    "picture": picture,
}
if rtype == "delivery-status":
    if parts[1].get_content_type() != "message/delivery-status":
        fail("second part is not message/delivery-status")
    # compat32 parses message/delivery-status into a list of header blocks.
    blocks = parts[1].get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        fail("delivery-status has no per-recipient block")
    out["per_message"] = dict(blocks[0].items())
    out["recipients"] = [dict(b.items()) for b in blocks[1:]]
    if len(parts) != 3 or parts[2].get_content_type() not in ("message/rfc822", "text/rfc822-headers"):
        fail("third part is not the original message or its headers")
    if parts[2].get_content_type() == "message/rfc822":
        inner = parts[2].get_payload()[0]
        out["returned_subject"] = inner["Subject"]
        out["returned_body"] = inner.get_payload() if not inner.is_multipart() else "(multipart)"
    else:
        out["returned_headers"] = parts[2].get_payload()
elif rtype == "disposition-notification":
    if parts[1].get_content_type() != "message/disposition-notification":
        fail("second part is not message/disposition-notification")
    blocks = parts[1].get_payload()
    out["mdn"] = dict(blocks[0].items()) if isinstance(blocks, list) else blocks
else:
    fail(f"report-type is {rtype}")
print(json.dumps(out))
