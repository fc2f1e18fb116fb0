"""The reference recipe as a plain script, for `make bench` to compare against.

train CSV MODEL EPOCHS BATCH: pandas read, StandardScaler, the pipeline's own
    default autoencoder (components.model.build_autoencoder), fit on label-0
    rows with validation_split 0.2, predict, threshold = mean + 3 std.
score CSV MODEL OUT: pandas read, the saved scaler, model.predict, write CSV.
Prints one JSON line.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train(csv, model_path, epochs, batch):
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import StandardScaler

    from components.model.autoencoder import build_autoencoder
    from components.model.settings import ModelSettings

    df = pd.read_csv(csv)
    x = df.drop(columns=["label"]).to_numpy(np.float32)
    normal = x[df["label"].to_numpy() == 0]
    scaler = StandardScaler().fit(normal)
    z = scaler.transform(normal).astype(np.float32)
    model = build_autoencoder(z.shape[1], ModelSettings(epochs=epochs, batch_size=batch,
                                                      early_stopping_patience=0))
    model.fit(z, z, epochs=epochs, batch_size=batch, validation_split=0.2, verbose=0)
    err = ((model.predict(z, batch_size=8192, verbose=0) - z) ** 2).mean(axis=1)
    threshold = float(err.mean() + 3 * err.std())
    model.save(model_path)
    np.savez(model_path + ".scaler.npz", mean=scaler.mean_, scale=scaler.scale_,
             threshold=threshold)
    return {"rows": len(df), "threshold": threshold}


def score(csv, model_path, out):
    import keras
    import numpy as np
    import pandas as pd

    model = keras.models.load_model(model_path)
    s = np.load(model_path + ".scaler.npz")
    df = pd.read_csv(csv)
    z = ((df.drop(columns=["label"]).to_numpy(np.float32) - s["mean"]) / s["scale"]).astype(
        np.float32)
    err = ((model.predict(z, batch_size=8192, verbose=0) - z) ** 2).mean(axis=1)
    df["reconstruction_error"] = err
    df["is_anomaly"] = (err > s["threshold"]).astype(int)
    df.to_csv(out, index=False)
    return {"rows": len(df)}


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "train":
        res = train(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        res = score(sys.argv[2], sys.argv[3], sys.argv[4])
    print(json.dumps(res))
