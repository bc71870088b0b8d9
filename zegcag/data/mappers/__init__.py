from .zs3_semantic_mapper import ZS3SemanticDatasetMapper

# INPUT.DATASET_MAPPER_NAME -> mapper class
MAPPERS = {"zs3_semantic": ZS3SemanticDatasetMapper}

__all__ = ["MAPPERS", "ZS3SemanticDatasetMapper"]
