#!/bin/bash
# faxgate's fax image corpus, built with Debian tools only:
#   perl (text), ghostscript (render), imagemagick (/usr/bin/convert: photo pages),
#   netpbm (pbmmake, pnmtotiff, pnmcat, pnmpad), libtiff-tools (tiffcp).
#
# Usage: OUT=dir TEXT_PAGES=n tests/corpus/make-corpus.sh
#   TEXT_PAGES dense text pages (default 4; the benchmark uses 50) and 2 photo pages (Floyd-
#   Steinberg and ordered dither), each at fine (1728x2287, 204x196 dpi) and standard
#   (1728x1143, 204x98 dpi), plus edge pages; every set as one multi-page TIFF in
#   raw (uncompressed), mh (G3 1-D, fill), mr (G3 2-D, fill), mmr (G4), FillOrder 2, one strip
#   per page — libtiff's own coding, the reference our decoders must match.
#
# Edge set (edge-raw.tif …): all white, all black, single-pixel checkerboard, black last column,
# at 1728; text-like pages at 2048 and 2432 (B4/A3, extended make-up codes), 204x196 dpi.
set -euo pipefail
OUT=${OUT:?set OUT to the output directory}
TEXT_PAGES=${TEXT_PAGES:-4}
CONVERT=/usr/bin/convert      # the real ImageMagick, not a stand-in earlier on PATH
W=1728
mkdir -p "$OUT/src"
S="$OUT/src"

# Deterministic text (srand 7): a dense page of words in PostScript; wrapping is done by the
# PostScript itself so one file renders at both resolutions.
perl -e '
  use strict; use warnings; my $pages = shift; srand(7);
  my @w = qw(fax gateway page line modem scan the of and to in is for with on by this are
    agreement party delivery payment invoice notice terms liability warranty confidential
    information rights termination breach effective date schedule clause subject provided
    reasonable costs applicable law court dispute consent assignment force majeure event
    performance standard specification acceptance defect within days receipt order price
    fees interest rate tax representatives employees agents successors amendment waiver);
  sub words { join " ", map { $w[int(rand(@w))] } 1..shift }
  print "%!PS\n/LM 40 def /RM 572 def /TOP 790 def /BOT 40 def\n";
  print "/nl { /y y 11 sub def y BOT lt { showpage /y TOP def } if LM y moveto } def\n";
  print "/wd { dup stringwidth pop currentpoint pop add RM gt { nl } if show ( ) show } def\n";
  print "/Times-Roman findfont 10 scalefont setfont /y TOP def LM y moveto\n";
  for my $p (1..$pages) {
    print "/Helvetica-Bold findfont 14 scalefont setfont (Page $p of the corpus) wd nl nl\n";
    print "/Times-Roman findfont 9.5 scalefont setfont\n";
    for my $l (1..62) { for my $x (split / /, words(14)) { print "($x) wd\n" } }
    print "showpage /y TOP def LM y moveto\n";
  }
' "$TEXT_PAGES" > "$S/text.ps"

for res in fine std; do
  if [ $res = fine ]; then H=2287; YR=196; else H=1143; YR=98; fi
  d="$S/$res"; rm -rf "$d"; mkdir -p "$d"
  gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=pbmraw -r204x$YR -g${W}x$H -dFIXEDMEDIA \
     -dLastPage="$TEXT_PAGES" -sOutputFile="$d/t%03d.pbm" "$S/text.ps"
  n=$(ls "$d"/t*.pbm | wc -l)
  [ "$n" -eq "$TEXT_PAGES" ] || { echo "expected $TEXT_PAGES text pages, got $n" >&2; exit 1; }
  G="${W}x${H}!"
  $CONVERT -seed 42 -size 432x572 plasma:fractal -blur 0x3 -colorspace Gray -auto-level \
           -resize "$G" -dither FloydSteinberg -monochrome "$d/p1.pbm"
  $CONVERT rose: -colorspace Gray -resize "$G" -ordered-dither o8x8 -monochrome "$d/p2.pbm"
  for f in "$d"/*.pbm; do
    pnmtotiff -none -miniswhite -rowsperstrip $H -xresolution 204 -yresolution $YR \
      -resolutionunit inch < "$f" > "${f%.pbm}.tif"
  done
  tiffcp -c none -r $H "$d"/t*.tif "$OUT/text-$res-raw.tif"
  tiffcp -c none -r $H "$d"/p?.tif "$OUT/photo-$res-raw.tif"
done

# Edge pages.
e="$S/edge"; rm -rf "$e"; mkdir -p "$e"
EH=300
pbmmake -white $W $EH > "$e/e1.pbm"
pbmmake -black $W $EH > "$e/e2.pbm"
pbmmake -gray $W $EH > "$e/e3.pbm"          # alternating single pixels: a checkerboard
# Black last column (and a black first column on every 10th row).
perl -e 'my ($w,$h)=@ARGV; my $s=int(($w+7)/8); print "P4\n$w $h\n";
  for my $y (0..$h-1) { my @b=(0)x$s; $b[$s-1] |= 1 << (7-(($w-1)%8)); $b[0] |= 0x80 if $y%10==0;
  print pack("C*",@b) }' $W $EH > "$e/e4.pbm"
# B4 and A3 widths: a text page padded right, with full-width black and white rows.
for w in 2048 2432; do
  pnmpad -white -right $((w - W)) "$S/fine/t001.pbm" | pamcut -top 0 -height 600 > "$e/w$w.pbm"
  perl -e 'my ($w)=@ARGV; my $s=int(($w+7)/8); print "P4\n$w 40\n";
    for my $y (0..39) { print pack("C*", ($y < 20 ? (0xff) x $s : (0) x $s)) }' $w > "$e/b$w.pbm"
  pnmcat -tb "$e/w$w.pbm" "$e/b$w.pbm" > "$e/x$w.pbm"
done
i=0
for f in e1 e2 e3 e4 x2048 x2432; do
  i=$((i + 1))
  pnmtotiff -none -miniswhite -xresolution 204 -yresolution 196 -resolutionunit inch \
    < "$e/$f.pbm" > "$e/$(printf %02d $i).tif"
done
tiffcp -c none "$e"/0?.tif "$OUT/edge-raw.tif"

for kind in text-fine text-std photo-fine photo-std edge; do
  tiffcp -c g3:1d:fill -f lsb2msb -r 100000 "$OUT/$kind-raw.tif" "$OUT/$kind-mh.tif"
  tiffcp -c g3:2d:fill -f lsb2msb -r 100000 "$OUT/$kind-raw.tif" "$OUT/$kind-mr.tif"
  tiffcp -c g4 -f lsb2msb -r 100000 "$OUT/$kind-raw.tif" "$OUT/$kind-mmr.tif"
done
rm -rf "$S"
echo "corpus in $OUT"
