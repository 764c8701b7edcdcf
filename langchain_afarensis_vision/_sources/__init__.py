"""Reading what a user or an LLM names, safely: the one way in for files, bytes and URLs.

``read`` (paths, bytes, file objects and data URLs, size caps first, header facts before any
decode), ``urls`` (the URL policy and the one fetcher), ``paths`` (files beneath an allowed
directory), ``listing`` (files, globs, folders and ``@list`` files named as sources),
``declared`` (what an image's first bytes declare, and whether its data can hold it),
``budget`` (decoded bytes in flight) and ``cache`` (the one bounded LRU).
"""
