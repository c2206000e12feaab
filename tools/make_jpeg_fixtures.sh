#!/bin/sh
# Makes tests/fixtures/jpeg/: small JPEGs in several coding modes and the
# expected RGB pixels from two decoders that are not sld's: Pillow's
# Image.open(f).convert("RGB") (Debian python3-pil, on the system
# libjpeg-turbo) and, where it can convert the file to RGB, `djpeg -dct int
# -ppm` (libjpeg-turbo-progs). Both must agree byte for byte, or the script
# fails. goldens.txt holds "file width height sha256-of-RGB" per line.
#
# Needs: libjpeg-turbo-progs (cjpeg, djpeg), python3-pil, a C compiler with
# libjpeg headers (for the YCCK file, which no command-line tool writes).
# Not a runtime dependency of sld. Run from the repository root.
set -eu
PY=/usr/bin/python3
OUT=tests/fixtures/jpeg
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$OUT"

# 33x25 (partial MCUs on both sides): smooth gradients, a hard edge, noise.
$PY - "$T/src.ppm" <<'PY'
import random, sys
random.seed(7)
w, h = 33, 25
px = bytearray()
for y in range(h):
    for x in range(w):
        r = (x * 255) // (w - 1)
        g = (y * 255) // (h - 1)
        b = 230 if (x - 16) ** 2 + (y - 12) ** 2 < 64 else 20
        n = random.randint(-25, 25)
        px += bytes(max(0, min(255, v + n)) for v in (r, g, b))
open(sys.argv[1], "wb").write(b"P6\n%d %d\n255\n" % (w, h) + px)
PY

cjpeg -quality 85 -sample 2x2 "$T/src.ppm" > "$OUT/baseline420.jpg"
cjpeg -quality 90 -sample 1x1 "$T/src.ppm" > "$OUT/q90_444.jpg"
cjpeg -quality 80 -sample 2x1 "$T/src.ppm" > "$OUT/s422.jpg"
cjpeg -quality 85 -grayscale "$T/src.ppm" > "$OUT/gray.jpg"
cjpeg -quality 85 -progressive "$T/src.ppm" > "$OUT/progressive.jpg"
cjpeg -quality 85 -restart 1B "$T/src.ppm" > "$OUT/restart.jpg"
cjpeg -quality 85 -arithmetic "$T/src.ppm" > "$OUT/arith.jpg"
cjpeg -quality 85 -rgb "$T/src.ppm" > "$OUT/rgb.jpg"

# CMYK (Adobe, inverted) as Pillow writes it, with a K gradient (Pillow's
# own RGB->CMYK leaves K at 0); YCCK with libjpeg directly.
$PY - "$T/src.ppm" "$OUT/cmyk.jpg" <<'PY'
import sys
from PIL import Image
c, m, y, _ = Image.open(sys.argv[1]).convert("CMYK").split()
k = Image.linear_gradient("L").resize(c.size).rotate(90)
Image.merge("CMYK", (c, m, y, k)).save(sys.argv[2], quality=85)
PY
cat > "$T/ycck.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
int main(int argc, char **argv)
{
    (void)argc;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    int w, h, m;
    if (!in || !out || fscanf(in, "P6 %d %d %d", &w, &h, &m) != 3) return 1;
    fgetc(in);
    unsigned char *rgb = malloc((size_t)w * h * 3), *row = malloc((size_t)w * 4);
    if (fread(rgb, 3, (size_t)w * h, in) != (size_t)w * h) return 1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, out);
    c.image_width = w; c.image_height = h; c.input_components = 4;
    c.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, JCS_YCCK); /* writes an Adobe marker, transform 2 */
    jpeg_set_quality(&c, 85, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) { /* inverted CMYK, as Adobe stores it */
            const unsigned char *p = rgb + ((size_t)y * w + x) * 3;
            int k = 255 - (p[0] > p[1] ? (p[0] > p[2] ? p[0] : p[2]) : (p[1] > p[2] ? p[1] : p[2]));
            row[4 * x] = p[0]; row[4 * x + 1] = p[1]; row[4 * x + 2] = p[2];
            row[4 * x + 3] = (unsigned char)(255 - k / 2);
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    fclose(out);
    return 0;
}
C
cc -o "$T/ycck" "$T/ycck.c" -ljpeg
"$T/ycck" "$T/src.ppm" "$OUT/ycck.jpg"

: > "$OUT/goldens.txt"
for f in "$OUT"/*.jpg; do
    b=$(basename "$f")
    $PY - "$f" "$T/pil.rgb" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1])
im.draft = None
open(sys.argv[2], "wb").write(im.convert("RGB").tobytes())
print(im.mode, im.size, file=sys.stderr)
PY
    # djpeg's CMYK->RGB is not Pillow's formula: 4-component files are
    # checked against Pillow only.
    nc=$($PY -c "from PIL import Image; print(len(Image.open('$f').getbands()))")
    if [ "$nc" != 4 ] && djpeg -dct int -ppm "$f" > "$T/dj.pnm" 2>/dev/null; then
        # strip the PNM header; gray (P5) is replicated to RGB
        $PY - "$T/dj.pnm" "$T/dj.rgb" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
parts = d.split(maxsplit=4)
kind, w, h, px = parts[0], int(parts[1]), int(parts[2]), parts[4]
if kind == b"P5":
    px = bytes(v for v in px for _ in range(3))
open(sys.argv[2], "wb").write(px)
PY
        cmp "$T/pil.rgb" "$T/dj.rgb" || { echo "$b: Pillow and djpeg disagree" >&2; exit 1; }
        src="pil+djpeg"
    else
        src="pil"
    fi
    wh=$($PY -c "from PIL import Image; i=Image.open('$f'); print(*i.size)")
    echo "$b $wh $(sha256sum < "$T/pil.rgb" | cut -d' ' -f1) $src" >> "$OUT/goldens.txt"
done
cat "$OUT/goldens.txt"
