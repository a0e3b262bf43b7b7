#!/usr/bin/env python3
"""Checks that a file is a complete, valid PNG image of a given size, and optionally that given
colours cover some of it: that a figure was drawn, not only that a file was written.

usage: pngcheck.py FILE WIDTH HEIGHT [#RRGGBB...]
Checks the signature, every chunk's CRC, IHDR's width and height, and that the IDAT stream
inflates to exactly height * (1 + width * bytes per pixel) bytes. With colours: undoes the PNG
row filters and requires each colour on at least 0.05 % of the pixels. Prints one line saying what
failed and exits 1, or exits 0."""
import struct
import sys
import zlib


def fail(msg):
    print(f"{sys.argv[1]}: {msg}")
    sys.exit(1)


def unfilter(raw, width, height, bpp):
    stride = width * bpp
    out = bytearray(height * stride)
    prev = bytearray(stride)
    pos = 0
    for y in range(height):
        ftype = raw[pos]
        line = bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif ftype == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        elif ftype != 0:
            fail(f"row {y}: unknown filter type {ftype}")
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return out


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    path, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("not a PNG (bad signature)")
    pos, ihdr, idat = 8, None, b""
    while pos < len(data):
        if pos + 8 > len(data):
            fail("truncated chunk header")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(ctype + body) != crc:
            fail(f"bad CRC in chunk {ctype!r}")
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat += body
        elif ctype == b"IEND":
            break
        pos += 12 + length
    if not ihdr:
        fail("no IHDR")
    w, h, depth, colour_type = ihdr[:4]
    if (w, h) != (width, height):
        fail(f"expected {width}x{height}, got {w}x{h}")
    if depth != 8 or colour_type not in (2, 6):
        fail(f"expected 8-bit RGB or RGBA, got depth {depth} colour type {colour_type}")
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    if len(raw) != h * (1 + w * bpp):
        fail(f"image data has {len(raw)} bytes, expected {h * (1 + w * bpp)}")
    if len(sys.argv) > 4:
        pixels = unfilter(raw, w, h, bpp)
        counts = {}
        for i in range(0, len(pixels), bpp):
            key = bytes(pixels[i:i + 3])
            counts[key] = counts.get(key, 0) + 1
        for colour in sys.argv[4:]:
            rgb = bytes.fromhex(colour.lstrip("#"))
            share = counts.get(rgb, 0) / (w * h)
            if share < 0.0005:
                fail(f"colour {colour} covers {100 * share:.3f} % of the image, expected at least 0.05 %")


main()
