/* media_size.h — what an image or a PDF sent as base64 measures: an image's
 * width and height from its header, a PDF's pages. */
#ifndef HR_MEDIA_SIZE_H
#define HR_MEDIA_SIZE_H
#include <stddef.h>
#include <stdint.h>

/* Width and height of the image in `data` (base64, or a data: URL): PNG,
 * JPEG, GIF and WebP headers. 0 when not one of those or not readable. */
int hr_media_image_size(const char *data, size_t len, uint32_t *w, uint32_t *h);
/* Pages of the PDF in `data` (base64, or a data: URL): the pages of the
 * page tree its last trailer's /Root names, objects in deflated object
 * streams too, each object as its last definition has it (an incremental
 * update appends new versions after %%EOF, and may free or drop a page);
 * when that tree cannot be read, its page objects, each object number once
 * and not if freed; else the page count of a linearized file; at least 1. */
uint64_t hr_media_pdf_pages(const char *data, size_t len);

#endif
