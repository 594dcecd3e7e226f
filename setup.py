"""pip install of the sentryfuse_ros Python package and the `sentryfuse` command.

The distribution is named `sentryfuse-ros`: `sentryfuse` is the ROS package whose
generated `sentryfuse.msg` module the message build installs beside it.
"""

from setuptools import find_packages, setup

setup(
    name="sentryfuse-ros",
    version="0.1.0",
    description="Modality- and power-aware zero-shot pruning for multimodal ROS 2 perception",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sentryfuse_ros", "sentryfuse_ros.*"]),
    package_data={"sentryfuse_ros": ["weights/*.safetensors", "weights/*.json"]},
    entry_points={"console_scripts": ["sentryfuse = sentryfuse_ros.cli:main"]},
)
