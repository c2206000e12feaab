/* test_coco.c — COCO captions reader: grouping by image, the seeded sample
 * (deterministic, one caption per image, every caption of its image,
 * prefix-stable as --limit grows), and one clear error per malformed file. */
#include "eval/coco.h"
#include "eval/fid.h"
#include "test.h"

/* 6 images (one without captions), 11 captions listed out of order */
static const char *COCO =
    "{\"info\": {}, \"images\": ["
    "{\"id\": 30, \"file_name\": \"c.jpg\"}, {\"id\": 10, \"file_name\": \"a.jpg\"},"
    "{\"id\": 20, \"file_name\": \"b.jpg\"}, {\"id\": 40, \"file_name\": \"d.jpg\"},"
    "{\"id\": 50, \"file_name\": \"e.jpg\"}, {\"id\": 60, \"file_name\": \"none.jpg\"}],"
    "\"annotations\": ["
    "{\"id\": 5, \"image_id\": 10, \"caption\": \"a cat\"},"
    "{\"id\": 2, \"image_id\": 10, \"caption\": \"a kitten\"},"
    "{\"id\": 7, \"image_id\": 20, \"caption\": \"a dog\"},"
    "{\"id\": 1, \"image_id\": 30, \"caption\": \"a bus\"},"
    "{\"id\": 9, \"image_id\": 30, \"caption\": \"a red bus\"},"
    "{\"id\": 3, \"image_id\": 30, \"caption\": \"a bus stop\"},"
    "{\"id\": 4, \"image_id\": 40, \"caption\": \"a tree\"},"
    "{\"id\": 6, \"image_id\": 50, \"caption\": \"the sea\"},"
    "{\"id\": 8, \"image_id\": 50, \"caption\": \"waves\"},"
    "{\"id\": 10, \"image_id\": 50, \"caption\": \"a beach\"},"
    "{\"id\": 11, \"image_id\": 50, \"caption\": \"sand\"}],"
    "\"licenses\": []}";

static sld_coco_set *parse(const char *t, long limit, uint32_t seed, sld_status *st,
                           sld_error *e)
{
    sld_coco_set *s = NULL;
    *st = sld_coco_parse(&s, t, strlen(t), "t.json", limit, seed, e);
    return s;
}

static void test_sample(void)
{
    sld_status st;
    sld_coco_set *all = parse(COCO, 0, 2023, &st, NULL);
    CHECK(st == SLD_OK && all);
    if (!all)
        return;
    CHECK(sld_coco_images(all) == 5);
    CHECK(sld_coco_count(all) == 5);
    /* one caption per image, each image once, caption belongs to the image */
    int seen[7] = {0};
    for (long i = 0; i < sld_coco_count(all); i++) {
        const sld_coco_caption *c = sld_coco_get(all, i);
        CHECK(c->image_id % 10 == 0 && c->image_id >= 10 && c->image_id <= 50);
        seen[c->image_id / 10]++;
        char want = "?abcde"[c->image_id / 10];
        CHECK(c->file_name[0] == want);
        if (c->image_id == 20)
            CHECK(!strcmp(c->caption, "a dog") && c->caption_id == 7);
        if (c->image_id == 40)
            CHECK(!strcmp(c->caption, "a tree"));
    }
    for (int k = 1; k <= 5; k++)
        CHECK(seen[k] == 1);
    /* the same draw as numpy: images = RandomState(2023).choice(5, 5) in that
     * order (checked through our RandomState, itself checked against numpy's
     * draws in test_fid) */
    sld_np_rng *r;
    long pick[5];
    CHECK(sld_np_rng_new(&r, 2023, NULL) == SLD_OK);
    CHECK(sld_np_rng_choice(r, 5, 5, pick, NULL) == SLD_OK);
    for (int i = 0; i < 5; i++)
        CHECK(sld_coco_get(all, i)->image_id == 10 * (pick[i] + 1));
    sld_np_rng_free(r);
    /* deterministic, and prefix-stable as the limit grows */
    for (long n = 1; n <= 5; n++) {
        sld_coco_set *p = parse(COCO, n, 2023, &st, NULL);
        CHECK(p && sld_coco_count(p) == n);
        for (long i = 0; p && i < n; i++)
            CHECK(sld_coco_get(p, i)->caption_id == sld_coco_get(all, i)->caption_id);
        sld_coco_free(p);
    }
    /* another seed gives another order (5! orders: a clash is unlikely) */
    sld_coco_set *o = parse(COCO, 0, 7, &st, NULL);
    int same = 1;
    for (long i = 0; o && i < 5; i++)
        same &= sld_coco_get(o, i)->caption_id == sld_coco_get(all, i)->caption_id;
    CHECK(o && !same);
    /* over many seeds every caption of image 50 gets drawn */
    int hit[12] = {0};
    for (uint32_t seed = 0; seed < 64; seed++) {
        sld_coco_set *p = parse(COCO, 0, seed, &st, NULL);
        for (long i = 0; p && i < 5; i++)
            if (sld_coco_get(p, i)->image_id == 50)
                hit[sld_coco_get(p, i)->caption_id]++;
        sld_coco_free(p);
    }
    CHECK(hit[6] && hit[8] && hit[10] && hit[11]);
    CHECK(sld_coco_get(all, 5) == NULL);
    sld_coco_free(o);
    sld_coco_free(all);
}

static void test_errors(void)
{
    sld_status st;
    sld_error e;
    CHECK(!parse("[1,2]", 0, 1, &st, &e) && st == SLD_ERR_FORMAT);
    CHECK(!parse("{\"prompt\": \"x\"}", 0, 1, &st, &e) && st == SLD_ERR_FORMAT);
    CHECK(strstr(e.msg, "\"annotations\"") != NULL);
    CHECK(!parse("{\"images\": [{\"id\": 1}], \"annotations\": [{\"id\": 1, \"image_id\": 2, "
                 "\"caption\": \"x\"}]}",
                 0, 1, &st, &e) &&
          st == SLD_ERR_FORMAT);
    CHECK(strstr(e.msg, "image 2") != NULL);
    CHECK(!parse("{\"images\": [{\"id\": 1}], \"annotations\": [{\"id\": 1, \"image_id\": 1}]}",
                 0, 1, &st, &e) &&
          st == SLD_ERR_FORMAT);
    CHECK(strstr(e.msg, "annotations[0]") != NULL);
    CHECK(!parse("{\"images\": [{\"id\": 1.5}], \"annotations\": []}", 0, 1, &st, &e) &&
          st == SLD_ERR_FORMAT);
    CHECK(!parse("{\"images\": [{\"id\": 1}], \"annotations\": []}", 0, 1, &st, &e) &&
          st == SLD_ERR_FORMAT);
    CHECK(!parse(COCO, 6, 1, &st, &e) && st == SLD_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "has 5") != NULL);
    CHECK(!parse(COCO, -1, 1, &st, &e) && st == SLD_ERR_INVALID_ARG);
    for (size_t cut = 0; cut < strlen(COCO); cut += 37) {
        sld_coco_set *s = NULL;
        CHECK(sld_coco_parse(&s, COCO, cut, "cut.json", 0, 1, NULL) == SLD_ERR_FORMAT);
    }
    sld_coco_set *s;
    CHECK(sld_coco_load(&s, "tests/fixtures/none.json", 0, 1, &e) == SLD_ERR_IO);
}

int main(void)
{
    RUN(test_sample);
    RUN(test_errors);
    TEST_END();
}
