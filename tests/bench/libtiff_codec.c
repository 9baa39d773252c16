/* faxgate benchmark peer: libtiff's CCITT codecs timed in-process, memory to memory.
 *
 *   libtiff_codec decode FILE.tif REPS         decode every strip of every page
 *   libtiff_codec encode RAW.tif mh|mr|mmr REPS  encode every page of an uncompressed file
 *
 * One output line per repetition: "pages P seconds S bytes B". The file is read into memory
 * once; each repetition opens it through TIFFClientOpen on that buffer, so directory parsing
 * is timed as it is for faxgate's reader. Built by the codec benchmark with
 *   gcc -O2 -o libtiff_codec libtiff_codec.c -ltiff      (Debian: libtiff-dev)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tiffio.h>

struct buf { unsigned char *data; uint64_t size, cap, at; };

static tmsize_t b_read(thandle_t h, void *dst, tmsize_t n) {
    struct buf *b = h;
    uint64_t left = b->at < b->size ? b->size - b->at : 0;
    if ((uint64_t)n > left) n = (tmsize_t)left;
    memcpy(dst, b->data + b->at, (size_t)n);
    b->at += (uint64_t)n;
    return n;
}
static tmsize_t b_write(thandle_t h, void *src, tmsize_t n) {
    struct buf *b = h;
    uint64_t end = b->at + (uint64_t)n;
    if (end > b->cap) {
        uint64_t cap = b->cap ? b->cap : 65536;
        while (cap < end) cap *= 2;
        unsigned char *p = realloc(b->data, (size_t)cap);
        if (!p) return -1;
        memset(p + b->cap, 0, (size_t)(cap - b->cap));
        b->data = p; b->cap = cap;
    }
    memcpy(b->data + b->at, src, (size_t)n);
    b->at = end;
    if (end > b->size) b->size = end;
    return n;
}
static toff_t b_seek(thandle_t h, toff_t off, int whence) {
    struct buf *b = h;
    if (whence == SEEK_CUR) off += b->at; else if (whence == SEEK_END) off += b->size;
    b->at = off;
    return off;
}
static int b_close(thandle_t h) { (void)h; return 0; }
static toff_t b_size(thandle_t h) { return ((struct buf *)h)->size; }
static int b_map(thandle_t h, void **base, toff_t *size) { (void)h; (void)base; (void)size; return 0; }
static void b_unmap(thandle_t h, void *base, toff_t size) { (void)h; (void)base; (void)size; }

static TIFF *open_buf(struct buf *b, const char *mode) {
    b->at = 0;
    return TIFFClientOpen("memory", mode, (thandle_t)b, b_read, b_write, b_seek, b_close, b_size, b_map, b_unmap);
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct buf load(const char *path) {
    struct buf b = {0};
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    b.size = b.cap = (uint64_t)ftell(f);
    rewind(f);
    b.data = malloc((size_t)b.size);
    if (fread(b.data, 1, (size_t)b.size, f) != b.size) { perror(path); exit(2); }
    fclose(f);
    return b;
}

struct page { uint32_t w, h; float xr, yr; unsigned char *bits; };

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s decode FILE REPS | encode RAW mh|mr|mmr REPS\n", argv[0]);
        return 2;
    }
    TIFFSetWarningHandler(NULL);
    struct buf in = load(argv[2]);
    if (strcmp(argv[1], "decode") == 0) {
        int reps = atoi(argv[3]);
        unsigned char *out = NULL;
        tmsize_t out_cap = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = seconds();
            long pages = 0;
            unsigned long check = 0;
            TIFF *t = open_buf(&in, "rm");
            if (!t) return 1;
            do {
                uint32_t h = 0;
                TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
                tmsize_t need = TIFFScanlineSize(t) * (tmsize_t)h;
                if (need > out_cap) { out_cap = need; out = realloc(out, (size_t)out_cap); }
                tmsize_t at = 0;
                for (uint32_t s = 0; s < TIFFNumberOfStrips(t); s++) {
                    tmsize_t n = TIFFReadEncodedStrip(t, s, out + at, -1);
                    if (n < 0) { fprintf(stderr, "decode error\n"); return 1; }
                    at += n;
                }
                check += out[at / 2];
                pages++;
            } while (TIFFReadDirectory(t));
            TIFFClose(t);
            printf("pages %ld seconds %.6f bytes %lu check %lu\n", pages, seconds() - t0, (unsigned long)in.size, check);
        }
        return 0;
    }
    if (argc < 5) return 2;
    const char *coding = argv[3];
    int reps = atoi(argv[4]);
    uint16_t compression = COMPRESSION_CCITTFAX4;
    uint32_t g3 = 0;
    if (strcmp(coding, "mh") == 0) { compression = COMPRESSION_CCITTFAX3; g3 = GROUP3OPT_FILLBITS; }
    else if (strcmp(coding, "mr") == 0) { compression = COMPRESSION_CCITTFAX3; g3 = GROUP3OPT_FILLBITS | GROUP3OPT_2DENCODING; }
    struct page pages[1024];
    int np = 0;
    TIFF *t = open_buf(&in, "rm");
    if (!t) return 1;
    do {
        struct page *p = &pages[np];
        TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &p->w);
        TIFFGetField(t, TIFFTAG_IMAGELENGTH, &p->h);
        TIFFGetField(t, TIFFTAG_XRESOLUTION, &p->xr);
        TIFFGetField(t, TIFFTAG_YRESOLUTION, &p->yr);
        p->bits = malloc((size_t)((p->w + 7) / 8) * p->h);
        tmsize_t at = 0;
        for (uint32_t s = 0; s < TIFFNumberOfStrips(t); s++) at += TIFFReadEncodedStrip(t, s, p->bits + at, -1);
        np++;
    } while (TIFFReadDirectory(t) && np < 1024);
    TIFFClose(t);
    struct buf out = {0};
    for (int r = 0; r < reps; r++) {
        out.size = 0;
        double t0 = seconds();
        TIFF *o = open_buf(&out, "w");
        for (int i = 0; i < np; i++) {
            struct page *p = &pages[i];
            TIFFSetField(o, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
            TIFFSetField(o, TIFFTAG_IMAGEWIDTH, p->w);
            TIFFSetField(o, TIFFTAG_IMAGELENGTH, p->h);
            TIFFSetField(o, TIFFTAG_BITSPERSAMPLE, 1);
            TIFFSetField(o, TIFFTAG_SAMPLESPERPIXEL, 1);
            TIFFSetField(o, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
            TIFFSetField(o, TIFFTAG_FILLORDER, FILLORDER_LSB2MSB);
            TIFFSetField(o, TIFFTAG_ROWSPERSTRIP, p->h);
            TIFFSetField(o, TIFFTAG_XRESOLUTION, p->xr);
            TIFFSetField(o, TIFFTAG_YRESOLUTION, p->yr);
            TIFFSetField(o, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
            TIFFSetField(o, TIFFTAG_COMPRESSION, compression);
            if (compression == COMPRESSION_CCITTFAX3) TIFFSetField(o, TIFFTAG_GROUP3OPTIONS, g3);
            TIFFSetField(o, TIFFTAG_PAGENUMBER, i, np);
            if (TIFFWriteEncodedStrip(o, 0, p->bits, (tmsize_t)((p->w + 7) / 8) * p->h) < 0) {
                fprintf(stderr, "encode error\n");
                return 1;
            }
            TIFFWriteDirectory(o);
        }
        TIFFClose(o);
        printf("pages %d seconds %.6f bytes %lu\n", np, seconds() - t0, (unsigned long)out.size);
    }
    return 0;
}
