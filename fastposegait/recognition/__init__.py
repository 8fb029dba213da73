"""Recognising people with a trained model: embedding API, gallery, input readers, export."""
