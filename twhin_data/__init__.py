"""twhin-data: Apache Beam pipelines that build TwHIN-BERT training and benchmark data."""

__version__ = "0.1.0"
