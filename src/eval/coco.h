/*
 * coco.h — COCO captions (captions_train2014/val2014/val2017.json) as a
 * prompt set: a deterministic, reproducible sample of captions, one per image.
 *
 * File format (the official annotations): {"images": [{"id", "file_name",
 * ...}], "annotations": [{"id", "image_id", "caption"}], ...}; other keys
 * are ignored. Every annotation must name an image of "images"; every
 * caption must be valid UTF-8 and hold more than white space; image ids are
 * in [0, 2^32) (they seed the generation of their caption).
 *
 * Sample of N (0 = every image that has a caption):
 *   1. the images that have at least one caption, by ascending image id;
 *      each image's captions by ascending annotation id;
 *   2. one numpy.random.RandomState(seed): the images are
 *      choice(n_images, N, replace=False) — kept in the drawn order —, then,
 *      image by image in that order, the caption randint(n_captions).
 * The same in Python (ids and caps as in 1):
 *     rng = np.random.RandomState(seed)
 *     pick = rng.choice(len(ids), N, replace=False)
 *     sample = [caps[ids[i]][rng.randint(len(caps[ids[i]]))] for i in pick]
 * choice draws a whole permutation whatever N is, so the sample of N is the
 * first N entries of any larger sample with the same seed: growing --limit
 * keeps the captions already generated.
 */
#ifndef SLD_EVAL_COCO_H
#define SLD_EVAL_COCO_H

#include "core/core.h"

typedef struct {
    int64_t image_id;
    int64_t caption_id;    /* the annotation's id */
    const char *file_name; /* the image's file_name ("" when absent) */
    const char *caption;   /* verbatim */
} sld_coco_caption;

typedef struct sld_coco_set sld_coco_set;

/* Parses text (name for messages) and draws the sample. Errors:
 * SLD_ERR_FORMAT (not COCO's captions format: names the key and index),
 * SLD_ERR_INVALID_ARG (limit < 0 or above the number of captioned images),
 * SLD_ERR_NOMEM. */
sld_status sld_coco_parse(sld_coco_set **out, const char *text, size_t len, const char *name,
                          long limit, uint32_t seed, sld_error *err);
/* The same from a file (at most 1 GiB); SLD_ERR_IO when unreadable. */
sld_status sld_coco_load(sld_coco_set **out, const char *path, long limit, uint32_t seed,
                         sld_error *err);
long sld_coco_count(const sld_coco_set *s);             /* captions in the sample */
long sld_coco_images(const sld_coco_set *s);            /* captioned images in the file */
const sld_coco_caption *sld_coco_get(const sld_coco_set *s, long i); /* valid until free */
void sld_coco_free(sld_coco_set *s);                    /* NULL is a no-op */

#endif /* SLD_EVAL_COCO_H */
