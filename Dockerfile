# One image, many roles (as in the seed): EXAMPLE_GOAL picks producer, consumer.kafka, consumer.spark or
# consumer.flink for `python -m helpers run`; the lab service runs JupyterLab from the same image.
FROM python:3.11.11-slim-bookworm

# Kafka 4, Spark 4 and Flink 2 need Java 17+; procps for the Spark/Flink launch scripts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps make \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /course
COPY pyproject.toml requirements.lock README.md jars.lock ./
COPY helpers ./helpers
RUN pip install --no-cache-dir -c requirements.lock -e . \
 && python -m helpers jars fetch --json \
 && python -m helpers.class_archive \
 && python -m helpers lab --settings-only --json

COPY notebooks ./notebooks
ENV EXAMPLE_GOAL=producer \
    EXAMPLE_KAFKA_TOPIC=example \
    KAFKA_BOOTSTRAP_SERVERS=kafka:9092 \
    COURSE_DATA_DIR=/course/.course \
    COURSE_JARS_DIR=/course/.course/jars
CMD ["python", "-m", "helpers", "run"]
