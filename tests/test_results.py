from kcifar.results import summary_line


def test_summary_line_carries_the_evidence():
    line = summary_line({"name": "trick4", "backend": "jax", "device": "cpu: x86_64 x2", "seed": 1,
                         "test_accuracy": 0.87, "train_accuracy": 0.9, "gap": 0.03,
                         "val_accuracy": 0.86, "epochs": 50, "wall_seconds": 1234.4})
    assert line == ("trick4 [jax, cpu: x86_64 x2, seed 1]: test 0.8700  train 0.9000  gap +0.0300  "
                    "val 0.8600  50 epochs in 1234 s")
    one = summary_line({"name": "trick4", "backend": "jax", "device": "cpu", "seed": 1, "test_accuracy": 0.5,
                        "train_accuracy": 0.5, "gap": 0.0, "clean_train_accuracy": 0.625, "val_accuracy": 0.5,
                        "epochs": 1, "wall_seconds": 9})
    assert one.endswith("gap +0.0000  clean train 0.6250  val 0.5000  1 epoch in 9 s")
    best = summary_line({"name": "trick4", "backend": "jax", "device": "cpu", "seed": 1, "test_accuracy": 0.5,
                         "train_accuracy": 0.5, "gap": 0.0, "val_accuracy": 0.5, "epochs": 50, "wall_seconds": 9,
                         "best_epoch": 41, "best_val_accuracy": 0.52, "best_test_accuracy": 0.515})
    assert best.endswith("50 epochs in 9 s; best on validation: epoch 41, test 0.5150")
