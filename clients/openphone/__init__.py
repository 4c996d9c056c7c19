"""OpenPhone's researcher tools: download releases (``openphone.download``), submit models (``openphone.submit``),
rewrite a release's Kaldi paths (``openphone.kaldi_paths``). Standard library and requests only."""
