#!/usr/bin/python3
"""Parse a delivery report with Python's `email` package (a MIME parser not written by us)
and print what it found as JSON, or exit 1 saying what is wrong.

Checks the RFC 3464 / RFC 6522 shape: multipart/report; report-type=delivery-status (or
disposition-notification for an MDN), first part text/plain, second part
message/delivery-status (or message/disposition-notification), and for a DSN a third part
message/rfc822 or text/rfc822-headers.

Usage: check_report.py FILE
"""
import email
import email.policy
import json
import sys


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
out = {
    "report_type": rtype,
    "from": msg["From"],
    "to": msg["To"],
    "subject": str(email.header.make_header(email.header.decode_header(msg["Subject"] or ""))),
    "auto_submitted": msg["Auto-Submitted"],
    "parts": [p.get_content_type() for p in parts],
    "summary": parts[0].get_payload(decode=True).decode("utf-8"),
}
if parts[0].get_content_type() != "text/plain":
    fail("first part is not text/plain")
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
