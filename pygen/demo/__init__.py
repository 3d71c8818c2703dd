"""``pygen demo``: warm-start bert2bert from a real BERT and fine-tune it on sentence fusion.

``fusion`` runs the demo; ``make_data`` regenerates the committed data set in ``data/``.
"""
