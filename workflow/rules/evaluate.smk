def evaluate_targets():
    return []
