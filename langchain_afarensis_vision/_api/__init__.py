"""The API's rules, shared by the client and the local server; nothing here imports the rest.

``contract`` (formats, the 20 MB limit, URL schemes, detail, the token formula and the chat
framing, error codes and types), ``tokenizer`` (cl100k_base, offline) and ``redaction`` (the key
masked wherever a server echoes it).
"""
