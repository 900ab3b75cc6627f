def train_targets():
    return []
