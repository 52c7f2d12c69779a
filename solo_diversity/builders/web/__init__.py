# SPDX-License-Identifier: MIT
"""``solo-div build web``: a class-prior web crawl built from well-kept libraries.

The stages, each resumable and each in its own module:

1. :mod:`.queries` turns class names into search queries (an ambiguous name gets its WordNet
   hypernym);
2. :mod:`.engines` asks DuckDuckGo (``ddgs``), Flickr (``flickrapi``) and Bing (Image Search v7)
   with SafeSearch on, each behind its own rate limit and backoff (:mod:`.pacing`);
3. :mod:`.urllist` keeps every result with its provenance (url, engine, query, rank, class) in a
   Parquet URL list, deduplicated by URL;
4. :mod:`.download` runs ``img2dataset`` over that list (sharded, resumable, per-sample status and
   sha256; Spark or Ray when a user has one);
5. :mod:`.validate` decodes each image and checks its size and colour mode;
6. :mod:`.dedup` drops perceptual-hash near-duplicates within the crawl and of a reference index
   (so that no test image leaks in);
7. :mod:`.select` keeps the top images per class by engine rank, and :mod:`.build` writes the
   index with the provenance of every image beside it.
"""
