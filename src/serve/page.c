/* page.c — the web page at / (src/serve/page.html), compiled into the
 * binary with the assembler's .incbin so the page stays a plain HTML file
 * (no build step, no generated C). The Makefile makes page.o depend on it. */
#include "serve/serve.h"

__asm__(".section .rodata\n"
        ".global sld_serve_page\n"
        ".type sld_serve_page, @object\n"
        ".balign 16\n"
        "sld_serve_page:\n"
        ".incbin \"src/serve/page.html\"\n"
        ".global sld_serve_page_end\n"
        "sld_serve_page_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const char sld_serve_page_end[];

size_t sld_serve_page_len(void) { return (size_t)(sld_serve_page_end - sld_serve_page); }
