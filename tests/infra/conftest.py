"""CDK tests run a jsii (node) kernel; keep its end-of-life banner for node 20 out of the output."""

import os

# Must be set before the first `import aws_cdk` starts the kernel; `make` exports the same value.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
