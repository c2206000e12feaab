/* json.c — config-file reading with precise error messages. */
#include "io/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sld_status sld_json_parse(sld_json *j, const char *text, const char *name, sld_error *err)
{
    j->root = NULL;
    j->path = sld_strdup(name ? name : "<json>");
    if (!j->path)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    j->root = cJSON_Parse(text);
    if (!j->root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at ? (long)(at - text) : -1;
        sld_err(err, SLD_ERR_FORMAT, "%s: invalid JSON near byte %ld", j->path, off);
        sld_json_free(j);
        return SLD_ERR_FORMAT;
    }
    return SLD_OK;
}

sld_status sld_json_load(sld_json *j, const char *path, sld_error *err)
{
    char *text = NULL;
    j->root = NULL;
    j->path = NULL;
    sld_status st = sld_file_read(path, (size_t)64 << 20, &text, NULL, err);
    if (st)
        return st;
    st = sld_json_parse(j, text, path, err);
    sld_free(text);
    return st;
}

void sld_json_free(sld_json *j)
{
    if (!j)
        return;
    cJSON_Delete(j->root);
    sld_free(j->path);
    j->root = NULL;
    j->path = NULL;
}

static const cJSON *get(const sld_json *j, const cJSON *node, const char *key)
{
    const cJSON *n = node ? node : j->root;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(n, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static sld_status missing(const sld_json *j, const char *key, sld_error *err)
{
    return sld_err(err, SLD_ERR_CONFIG, "%s: missing required key \"%s\"", j->path, key);
}

static sld_status wrong(const sld_json *j, const char *key, const char *want, sld_error *err)
{
    return sld_err(err, SLD_ERR_CONFIG, "%s: key \"%s\" must be %s", j->path, key, want);
}

static sld_status as_int(const sld_json *j, const cJSON *v, const char *key, int *out,
                         sld_error *err)
{
    if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble ||
        fabs(v->valuedouble) > 2147483647.0)
        return wrong(j, key, "an integer", err);
    *out = (int)v->valuedouble;
    return SLD_OK;
}

sld_status sld_json_int_req(const sld_json *j, const cJSON *node, const char *key, int *out,
                            sld_error *err)
{
    const cJSON *v = get(j, node, key);
    return v ? as_int(j, v, key, out, err) : missing(j, key, err);
}

sld_status sld_json_int_opt(const sld_json *j, const cJSON *node, const char *key, int def,
                            int *out, sld_error *err)
{
    const cJSON *v = get(j, node, key);
    if (!v) {
        *out = def;
        return SLD_OK;
    }
    return as_int(j, v, key, out, err);
}

sld_status sld_json_num_req(const sld_json *j, const cJSON *node, const char *key, double *out,
                            sld_error *err)
{
    const cJSON *v = get(j, node, key);
    if (!v)
        return missing(j, key, err);
    if (!cJSON_IsNumber(v))
        return wrong(j, key, "a number", err);
    *out = v->valuedouble;
    return SLD_OK;
}

sld_status sld_json_num_opt(const sld_json *j, const cJSON *node, const char *key, double def,
                            double *out, sld_error *err)
{
    const cJSON *v = get(j, node, key);
    if (!v) {
        *out = def;
        return SLD_OK;
    }
    if (!cJSON_IsNumber(v))
        return wrong(j, key, "a number", err);
    *out = v->valuedouble;
    return SLD_OK;
}

sld_status sld_json_bool_opt(const sld_json *j, const cJSON *node, const char *key, int def,
                             int *out, sld_error *err)
{
    const cJSON *v = get(j, node, key);
    if (!v) {
        *out = def;
        return SLD_OK;
    }
    if (!cJSON_IsBool(v))
        return wrong(j, key, "true or false", err);
    *out = cJSON_IsTrue(v);
    return SLD_OK;
}

sld_status sld_json_str_req(const sld_json *j, const cJSON *node, const char *key,
                            const char **out, sld_error *err)
{
    const cJSON *v = get(j, node, key);
    if (!v)
        return missing(j, key, err);
    if (!cJSON_IsString(v))
        return wrong(j, key, "a string", err);
    *out = v->valuestring;
    return SLD_OK;
}

sld_status sld_json_str_opt(const sld_json *j, const cJSON *node, const char *key,
                            const char *def, const char **out, sld_error *err)
{
    const cJSON *v = get(j, node, key);
    if (!v) {
        *out = def;
        return SLD_OK;
    }
    if (!cJSON_IsString(v))
        return wrong(j, key, "a string", err);
    *out = v->valuestring;
    return SLD_OK;
}

sld_status sld_json_ints_opt(const sld_json *j, const cJSON *node, const char *key, int *vals,
                             int cap, int *n, sld_error *err)
{
    const cJSON *v = get(j, node, key);
    *n = 0;
    if (!v)
        return SLD_OK;
    if (cJSON_IsNumber(v)) {
        *n = 1;
        return as_int(j, v, key, &vals[0], err);
    }
    if (!cJSON_IsArray(v))
        return wrong(j, key, "an integer or a list of integers", err);
    int k = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        if (k >= cap)
            return sld_err(err, SLD_ERR_CONFIG, "%s: key \"%s\" has more than %d entries",
                           j->path, key, cap);
        sld_status st = as_int(j, e, key, &vals[k++], err);
        if (st)
            return st;
    }
    *n = k;
    return SLD_OK;
}

sld_status sld_json_strs_req(const sld_json *j, const cJSON *node, const char *key,
                             const char **vals, int cap, int *n, sld_error *err)
{
    const cJSON *v = get(j, node, key);
    *n = 0;
    if (!v)
        return missing(j, key, err);
    if (!cJSON_IsArray(v))
        return wrong(j, key, "a list of strings", err);
    int k = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        if (k >= cap)
            return sld_err(err, SLD_ERR_CONFIG, "%s: key \"%s\" has more than %d entries",
                           j->path, key, cap);
        if (!cJSON_IsString(e))
            return wrong(j, key, "a list of strings", err);
        vals[k++] = e->valuestring;
    }
    *n = k;
    return SLD_OK;
}
