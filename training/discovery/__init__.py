"""Intent discovery: cluster texts no label covers (``textcls intents discover``).

space.py chooses and runs the embedding (the model's own encoder, the pretrained encoder
package, or TF-IDF); clusters.py groups the texts and describes each group.
"""
